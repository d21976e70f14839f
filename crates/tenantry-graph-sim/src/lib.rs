//! A faithful local Microsoft identity platform + Microsoft Graph simulator, for
//! `tenantry dev`, the tests and the benchmarks. It knows nothing of Tenantry and depends
//! on no other crate of the workspace.
//!
//! Empty until the simulator capability lands.
