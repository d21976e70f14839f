//! Partner-mode routes of the control API: a tenant's consent choice and delays, directory
//! roles on an app's service principal, revoking consent, GDAP relationships and an app's
//! redirect URIs (each a thin wrapper of the [`SimState`] method of the same purpose).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde_json::json;
use uuid::Uuid;

use crate::SimState;
use crate::partner::ControlError;
use crate::scenario::{ConsentSpec, RelationshipSpec};

pub fn router() -> Router<SimState> {
    Router::new()
        .route(
            "/_sim/tenants/{tenant}/consent",
            get(consent).put(set_consent),
        )
        .route(
            "/_sim/tenants/{tenant}/servicePrincipals/{client_id}",
            axum::routing::delete(remove_service_principal),
        )
        .route(
            "/_sim/tenants/{tenant}/servicePrincipals/{client_id}/directoryRoles",
            put(set_directory_roles),
        )
        .route(
            "/_sim/tenants/{tenant}/delegatedAdminRelationships",
            get(relationships),
        )
        .route(
            "/_sim/tenants/{tenant}/delegatedAdminRelationships/{id}",
            put(put_relationship).delete(remove_relationship),
        )
        .route(
            "/_sim/tenants/{tenant}/applications/{client_id}/redirectUris",
            put(set_redirect_uris),
        )
}

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        let status = match self {
            ControlError::UnknownRole(_) => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::NOT_FOUND,
        };
        (status, Json(json!({"error": self.to_string()}))).into_response()
    }
}

fn done(result: Result<(), ControlError>) -> Response {
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => error.into_response(),
    }
}

async fn consent(State(state): State<SimState>, Path(tenant): Path<String>) -> Response {
    match state.consent(&tenant) {
        Ok(consent) => Json(consent).into_response(),
        Err(error) => error.into_response(),
    }
}

async fn set_consent(
    State(state): State<SimState>,
    Path(tenant): Path<String>,
    Json(consent): Json<ConsentSpec>,
) -> Response {
    done(state.set_consent(&tenant, consent))
}

#[derive(serde::Deserialize)]
struct DirectoryRoles {
    /// Display names or role template ids.
    roles: Vec<String>,
}

async fn set_directory_roles(
    State(state): State<SimState>,
    Path((tenant, client_id)): Path<(String, Uuid)>,
    Json(body): Json<DirectoryRoles>,
) -> Response {
    done(state.set_directory_roles(&tenant, client_id, &body.roles))
}

async fn remove_service_principal(
    State(state): State<SimState>,
    Path((tenant, client_id)): Path<(String, Uuid)>,
) -> Response {
    done(state.remove_service_principal(&tenant, client_id))
}

async fn relationships(State(state): State<SimState>, Path(tenant): Path<String>) -> Response {
    match state.relationships(&tenant) {
        Ok(relationships) => Json(relationships).into_response(),
        Err(error) => error.into_response(),
    }
}

/// The body is a scenario `RelationshipSpec`; its `id` is the path's.
async fn put_relationship(
    State(state): State<SimState>,
    Path((tenant, id)): Path<(String, String)>,
    Json(mut relationship): Json<RelationshipSpec>,
) -> Response {
    relationship.id = id;
    done(state.put_relationship(&tenant, relationship))
}

async fn remove_relationship(
    State(state): State<SimState>,
    Path((tenant, id)): Path<(String, String)>,
) -> Response {
    done(state.remove_relationship(&tenant, &id))
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct RedirectUris {
    redirect_uris: Vec<String>,
}

async fn set_redirect_uris(
    State(state): State<SimState>,
    Path((tenant, client_id)): Path<(String, Uuid)>,
    Json(body): Json<RedirectUris>,
) -> Response {
    done(state.set_redirect_uris(&tenant, client_id, body.redirect_uris))
}
