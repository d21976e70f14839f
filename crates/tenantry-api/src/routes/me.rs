//! `GET /api/v1/me`: who the presented key belongs to. The first call a script or the
//! dashboard makes, to check a key and learn its MSP and powers.

use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::views::{ApiKeyView, MspView, OperatorView};
use crate::caller::Caller;
use crate::problem::{ApiError, Problem};

#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    pub msp: MspView,
    /// The person holding the key (also `key.operator`).
    pub operator: OperatorView,
    pub key: ApiKeyView,
}

/// The caller's MSP, operator (the person holding the key) and API key.
#[utoipa::path(
    get,
    path = "/api/v1/me",
    tag = "auth",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The caller", body = Me),
        (status = 401, description = "Missing or invalid key", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed authentications", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_me(caller: Caller) -> Result<Json<Me>, ApiError> {
    let (msp, key) = caller.scope().me().await?;
    Ok(Json(Me {
        msp: msp.into(),
        operator: key.operator.clone().into(),
        key: key.into(),
    }))
}
