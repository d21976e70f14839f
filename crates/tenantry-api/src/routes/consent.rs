//! `GET /consent/callback`: where Microsoft sends a customer's admin back after the
//! admin-consent page. No API key: the `state` is the only proof, and nothing of the query
//! is trusted besides it (the `tenant` parameter is the browser's to forge,
//! graph-facts-next §1.4). A good state is used up with the admin's answer in one
//! transaction and, after a consent, the customer's verification is queued; a forged,
//! replayed, expired or missing state changes nothing and answers a plain error page. The
//! pages are fixed text: nothing from the query is echoed into them.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tenantry_store::partner::consent::StateRefusal;

use crate::app::AppState;
use crate::extract::ApiQuery;
use crate::problem::ApiError;

/// What Microsoft's redirect carries (graph-facts-next §1.4), v1 and v2 alike. Unknown
/// parameters are ignored: Microsoft may add some.
#[derive(Deserialize)]
pub struct CallbackQuery {
    state: Option<String>,
    admin_consent: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} · Tenantry</title></head>\
         <body style=\"font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;line-height:1.5\">\
         <h1>{title}</h1><p>{body}</p></body></html>"
    );
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        [(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'",
        )],
        axum::Extension(crate::finish::OwnBody),
        html,
    )
        .into_response()
}

/// The AADSTS code at the start of Entra's description, digits only (never echoed raw).
fn aadsts(description: Option<&str>) -> Option<String> {
    let digits: String = description?
        .trim_start()
        .strip_prefix("AADSTS")?
        .chars()
        .take_while(char::is_ascii_digit)
        .take(10)
        .collect();
    (!digits.is_empty()).then(|| format!("AADSTS{digits}"))
}

#[utoipa::path(get, path = "/consent/callback", tag = "partner",
    params(("state" = String, Query, description = "The state of the consent link"),
        ("admin_consent" = Option<String>, Query, description = "`True` after a consent"),
        ("error" = Option<String>, Query, description = "`access_denied` when declined")),
    responses((status = 200, description = "The answer was recorded (HTML)"),
        (status = 400, description = "Unknown, used or expired state; nothing changed (HTML)")))]
pub async fn consent_callback(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<CallbackQuery>,
) -> Response {
    let Some(consent_state) = query.state.as_deref().filter(|s| !s.is_empty()) else {
        return page(
            StatusCode::BAD_REQUEST,
            "This is not a consent link's answer",
            "The address has no <code>state</code>. Nothing was changed. Ask your MSP for a new consent link.",
        );
    };
    let declined = match (query.error.as_deref(), query.admin_consent.as_deref()) {
        (None, Some(yes)) if yes.eq_ignore_ascii_case("true") => None,
        (None, _) => {
            return page(
                StatusCode::BAD_REQUEST,
                "Microsoft's answer is incomplete",
                "The address says neither that consent was given nor why not. Nothing was changed. Ask your MSP for a new consent link.",
            );
        }
        (Some(_), _) => Some(aadsts(query.error_description.as_deref()).map_or_else(
            || "declined".to_owned(),
            |code| format!("declined ({code})"),
        )),
    };
    match state
        .store
        .redeem_consent_state(consent_state, declined.as_deref())
        .await
    {
        Ok(Ok(grant)) => {
            tracing::info!(partner_connection_id = %grant.partner_connection_id,
                tenant_id = %grant.customer_tenant_id, declined = declined.is_some(), "consent callback");
            if declined.is_some() {
                page(
                    StatusCode::OK,
                    "Consent was declined",
                    "Your answer was recorded: the app was not given access. If this was a mistake, ask your MSP for a new consent link.",
                )
            } else {
                page(
                    StatusCode::OK,
                    "Thank you: consent was given",
                    "Microsoft takes a few minutes (at most two hours) to apply it everywhere; your MSP's Tenantry checks by itself and shows it when it is done. You can close this page.",
                )
            }
        }
        Ok(Err(refusal)) => {
            let why = match refusal {
                StateRefusal::Unknown => "This consent link was not issued by this service.",
                StateRefusal::Used => "This consent link was already used.",
                StateRefusal::Expired => "This consent link has expired (links work for an hour).",
            };
            page(
                StatusCode::BAD_REQUEST,
                "This consent link cannot be used",
                &format!("{why} Nothing was changed. Ask your MSP for a new consent link."),
            )
        }
        Err(error) => {
            let error = ApiError::from(error);
            tracing::warn!(error = %error, "consent callback failed");
            page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Tenantry could not record the answer",
                "Nothing was changed. Please try the consent link again in a minute.",
            )
        }
    }
}
