//! An organization's Graph token for a job: its stored credentials opened, a token from
//! the cache or Entra, and the failure told apart (retry later, or refused for good).

use secrecy::SecretString;
use tenantry_domain::OrganizationId;
use tenantry_graph::{GraphHttp, TokenCache, TokenFailure};
use tenantry_store::action_runs::ActionRunStore;

/// Why no token came.
pub(crate) enum NoToken {
    /// The database or Microsoft's login service failed: try again later.
    Later(String),
    /// Entra refused the stored credentials: no retry will help.
    Refused(String),
}

pub(crate) async fn organization_token(
    store: &ActionRunStore,
    tokens: &TokenCache,
    http: &GraphHttp,
    organization: OrganizationId,
) -> Result<SecretString, NoToken> {
    let stored = store
        .credential(organization)
        .await
        .map_err(|e| NoToken::Later(format!("database: {e}")))?;
    tokens
        .token(
            http,
            &stored.tenant_id.to_string(),
            &stored.client_id.to_string(),
            &stored.secret,
        )
        .await
        .map_err(|failure| match failure {
            TokenFailure::Unavailable(cause) => {
                NoToken::Later(format!("Microsoft's login service: {cause}"))
            }
            TokenFailure::Refused { error, code } => NoToken::Refused(format!(
                "Entra refused the stored credentials ({error}, AADSTS{code}); re-validate the organization or replace its secret"
            )),
        })
}
