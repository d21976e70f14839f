//! The Microsoft identity platform and Microsoft Graph client: token acquisition and cache,
//! typed calls for each endpoint Tenantry uses, `@odata.nextLink` paging, `$batch`,
//! throttling, error classification into domain errors, and the credential validator.
//! No database. Base URLs (login authority, Graph) are always injected, so the simulator,
//! tests and national clouds take the same path.
//!
//! Empty until the "add a tenant" capability lands; the crate exists now so the dependency
//! rules of the workspace hold from the start (it may depend on `tenantry-domain` only).
