//! The Microsoft identity platform and Microsoft Graph client: token acquisition (through
//! the `oauth2` crate, with Entra's error body classified on `error` and `error_codes`,
//! never on message text), a token cache with early refresh and single flight, typed
//! calls for the endpoints Tenantry uses, the Exchange Online admin API ([`exchange`]), certificate credentials (reading an uploaded key
//! and certificate, generating a pair, signing client assertions), error classification
//! (throttling and outages are never reported as bad credentials), the credential
//! validator, and partner mode (a multi-tenant app proven in its partner tenant and
//! validated in customers, GDAP lists, consent links).
//!
//! No database. The login authority and Graph base URL are always injected, so the
//! simulator, tests and national clouds take the same code path.

mod access;
pub mod actions;
pub mod assertion;
pub mod calls;
pub mod certificate;
mod config;
pub mod exchange;
mod http_client;
pub mod partner;
pub mod reader;
pub mod report;
pub mod token;
pub mod validator;

pub use access::GraphAccess;
pub use config::{EXCHANGE_URL, GraphConfig};
pub use http_client::{GraphHttp, install_default_crypto};
pub use report::ValidationReport;
pub use token::{TokenCache, TokenFailure};
pub use validator::{CredentialReason, Credentials, ValidationError, Validator};
