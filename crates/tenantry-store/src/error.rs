//! Errors of the store, in terms the API layer can map to problem codes.

use tenantry_domain::KeyGrantError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such object within the caller's MSP (it may exist in another MSP: callers must
    /// not be able to tell).
    #[error("not found")]
    NotFound,
    #[error("organization {0} is not one of this MSP's organizations")]
    UnknownOrganization(tenantry_domain::OrganizationId),
    #[error("this Microsoft 365 tenant is already bound to an organization")]
    TenantAlreadyBound,
    #[error("no master key is configured, so credentials cannot be sealed or opened")]
    NoMasterKey,
    #[error(
        "{left} data key(s) are still sealed under an older master key; restart every service with the new key, then rotate again"
    )]
    RotationIncomplete { left: i64 },
    #[error("sealing: {0}")]
    Sealing(#[from] crate::sealing::SealError),
    #[error("the caller's own API key was revoked during the request")]
    CallerRevoked,
    /// A job cannot move to the state asked for.
    #[error("{0}")]
    JobConflict(&'static str),
    /// A request the rules refuse, with the stable code that says why.
    #[error("{1}")]
    Refused(tenantry_domain::ErrorCode, String),
    #[error("revoking this key would leave the MSP without an active owner key")]
    LastOwnerKey,
    #[error(transparent)]
    NotAllowed(#[from] KeyGrantError),
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// A row broke an invariant the schema should have enforced.
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

/// Why a presented API key was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("malformed API key")]
    Malformed,
    #[error("unknown API key id")]
    UnknownKey,
    #[error("wrong API key secret")]
    WrongSecret,
    #[error("revoked API key")]
    Revoked,
    #[error("database error while checking an API key")]
    Database(#[from] sqlx::Error),
    #[error("corrupt row: {0}")]
    Corrupt(&'static str),
}

impl AuthError {
    /// A stable label for logs and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::Malformed => "malformed",
            AuthError::UnknownKey => "unknown_key",
            AuthError::WrongSecret => "wrong_secret",
            AuthError::Revoked => "revoked",
            AuthError::Database(_) => "database",
            AuthError::Corrupt(_) => "corrupt",
        }
    }
}
