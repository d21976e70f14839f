//! An organization's Graph token for a job, from the cache or Entra, with the failure
//! told apart: try again later, or refused for good. A refusal that says the app's
//! service principal is gone (consent revoked) is noted on the organization, so it shows
//! `needs_attention` with the reason instead of only failed jobs.

use secrecy::SecretString;
use tenantry_domain::{AppCredential, OrganizationId};
use tenantry_graph::{GraphAccess, TokenFailure};
use tenantry_store::TokenRefusals;
use uuid::Uuid;

/// Why no token came.
pub(crate) enum NoToken {
    /// Microsoft's login service failed: try again later.
    Later(String),
    /// Entra refused the stored credentials: no retry will help.
    Refused(String),
}

/// Where a refusal is noted: the process's refusal log and the organization.
pub(crate) struct Refusals<'a> {
    pub log: &'a TokenRefusals,
    pub organization: OrganizationId,
}

pub(crate) async fn organization_token(
    graph: &GraphAccess,
    refusals: Refusals<'_>,
    tenant_id: Uuid,
    client_id: Uuid,
    credential: &AppCredential,
) -> Result<SecretString, NoToken> {
    let answer = graph
        .organization_token(tenant_id, client_id, credential)
        .await;
    if let Err(TokenFailure::Refused { code, .. }) = &answer
        && let Err(error) = refusals.log.note(refusals.organization, *code).await
    {
        tracing::warn!(%error, "the token refusal could not be noted on the organization");
    }
    answer.map_err(|failure| match failure {
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
