//! Tenantry's domain vocabulary and rules: identifiers that parse, MSP roles and the rules
//! for who may manage API keys, the action catalogue (parameters and the Graph calls each
//! action plans), policies and their decisions, webhook rules, capabilities and the
//! permissions each needs, discovery sections, scan schedules, app credentials (a client
//! secret or a certificate), partner mode's badges, and the stable error codes every API response uses.
//!
//! This crate is pure on purpose: no I/O, no async, no database. Everything here is
//! unit-tested without a network or a PostgreSQL cluster, and every other crate may depend
//! on it.

pub mod actions;
pub mod api_key;
pub mod capabilities;
pub mod credential;
pub mod discovery;
pub mod error_chain;
pub mod error_code;
pub mod ids;
pub mod licences;
pub mod name;
pub mod partner;
pub mod permissions;
pub mod policy;
pub mod role;
pub mod schedule;
pub mod states;
pub mod webhooks;

pub use api_key::{ApiKeyToken, KeyGrant, KeyGrantError, KeyId, MalformedKey, OrganizationLimit};
pub use credential::{AppCredential, CertificateCredential, CredentialKind};
pub use error_chain::error_chain;
pub use error_code::ErrorCode;
pub use ids::{ActionId, ApiKeyRecordId, DiscoveryRunId, JobId, MspId, OperatorId, OrganizationId};
pub use name::{DisplayName, InvalidName};
pub use role::{Role, UnknownRole};
pub use states::{
    ActionState, JobState, OrganizationStatus, RunState, UnknownState, ValidationFailure,
    WebhookEventState,
};
