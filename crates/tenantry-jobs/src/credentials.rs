//! An organization's Graph token for a job, from the cache or Entra, with the failure
//! told apart: try again later, or refused for good.

use secrecy::SecretString;
use tenantry_domain::AppCredential;
use tenantry_graph::{GraphAccess, TokenFailure};
use uuid::Uuid;

/// Why no token came.
pub(crate) enum NoToken {
    /// Microsoft's login service failed: try again later.
    Later(String),
    /// Entra refused the stored credentials: no retry will help.
    Refused(String),
}

pub(crate) async fn organization_token(
    graph: &GraphAccess,
    tenant_id: Uuid,
    client_id: Uuid,
    credential: &AppCredential,
) -> Result<SecretString, NoToken> {
    graph
        .organization_token(tenant_id, client_id, credential)
        .await
        .map_err(|failure| match failure {
            TokenFailure::Unavailable(cause) => {
                NoToken::Later(format!("Microsoft's login service: {cause}"))
            }
            TokenFailure::Refused { error, code, .. } => NoToken::Refused(format!(
                "Entra refused the stored credentials ({error}, AADSTS{code}); re-validate the organization or replace its secret or certificate"
            )),
            TokenFailure::Unusable(cause) => NoToken::Refused(format!(
                "the stored credential cannot be used ({cause}); replace the organization's certificate"
            )),
        })
}
