//! One process's way to Microsoft: the HTTP client and the token cache that the API's
//! request checks and every job share, so a tenant's token is fetched once per process
//! (not once per component) and connection pools are not multiplied.

use secrecy::SecretString;
use tenantry_domain::AppCredential;
use uuid::Uuid;

use crate::{GraphHttp, TokenCache, TokenFailure, Validator};

/// The Graph client and token cache of a process. Cheap to clone.
#[derive(Clone)]
pub struct GraphAccess {
    http: GraphHttp,
    tokens: TokenCache,
}

impl GraphAccess {
    pub fn new(http: GraphHttp) -> Self {
        Self {
            http,
            tokens: TokenCache::default(),
        }
    }

    pub fn http(&self) -> &GraphHttp {
        &self.http
    }

    /// An organization's app-only Graph token, from the cache or Entra.
    pub async fn organization_token(
        &self,
        tenant_id: Uuid,
        client_id: Uuid,
        credential: &AppCredential,
    ) -> Result<SecretString, TokenFailure> {
        self.tokens
            .token(
                &self.http,
                &tenant_id.to_string(),
                &client_id.to_string(),
                credential,
            )
            .await
    }

    /// An organization's app-only token for the Exchange Online admin API (its own cache
    /// entry: one token per tenant and resource).
    pub async fn exchange_token(
        &self,
        tenant_id: Uuid,
        client_id: Uuid,
        credential: &AppCredential,
    ) -> Result<SecretString, TokenFailure> {
        self.tokens
            .token_for(
                &self.http,
                &tenant_id.to_string(),
                &client_id.to_string(),
                credential,
                crate::token::EXCHANGE_SCOPE,
            )
            .await
    }

    /// Forgets every cached token, so the next call takes one that carries what Entra
    /// grants now (after a permission change an operator knows of).
    pub fn forget_tokens(&self) {
        self.tokens.clear();
    }

    /// A credential validator on the same client (it takes fresh tokens of its own: a
    /// validation must prove the credentials now, not an hour ago).
    pub fn validator(&self) -> Validator {
        Validator::new(self.http.clone())
    }
}
