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
    /// The database is out of reach (down, restarting, no connection to be had in time):
    /// not the request's fault, and worth retrying.
    #[error("the database is unavailable")]
    Unavailable(#[source] sqlx::Error),
    #[error("database error")]
    Database(#[source] sqlx::Error),
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
    #[error("the database is unavailable")]
    Unavailable(#[source] sqlx::Error),
    #[error("database error while checking an API key")]
    Database(#[source] sqlx::Error),
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
            AuthError::Unavailable(_) => "database_unavailable",
            AuthError::Database(_) => "database",
            AuthError::Corrupt(_) => "corrupt",
        }
    }
}

impl StoreError {
    /// Whether the database was out of reach (also for errors built as
    /// [`StoreError::Database`] directly rather than converted).
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Unavailable(_) => true,
            StoreError::Database(e) => unavailable(e),
            _ => false,
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        if unavailable(&error) {
            StoreError::Unavailable(error)
        } else {
            StoreError::Database(error)
        }
    }
}

impl From<sqlx::Error> for AuthError {
    fn from(error: sqlx::Error) -> Self {
        if unavailable(&error) {
            AuthError::Unavailable(error)
        } else {
            AuthError::Database(error)
        }
    }
}

/// Whether `error` says the database is out of reach rather than that the statement
/// failed: no connection within the pool's acquire timeout, a closed pool, a connection
/// that broke (I/O, TLS), or PostgreSQL refusing or dropping sessions (connection
/// exceptions `08…`, shutting down `57P01`/`57P02`, starting up `57P03`, too many
/// connections `53300`).
pub(crate) fn unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03" | "53300")
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::{StoreError, unavailable};

    #[test]
    fn outages_are_told_apart_from_failed_statements() {
        assert!(unavailable(&sqlx::Error::PoolTimedOut));
        assert!(unavailable(&sqlx::Error::PoolClosed));
        assert!(unavailable(&sqlx::Error::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset
        ))));
        assert!(!unavailable(&sqlx::Error::RowNotFound));
        assert!(StoreError::from(sqlx::Error::PoolTimedOut).is_unavailable());
        assert!(!StoreError::from(sqlx::Error::RowNotFound).is_unavailable());
        assert!(!StoreError::NotFound.is_unavailable());
    }
}
