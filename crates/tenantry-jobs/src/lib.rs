//! The durable job engine (the only crate that names the queue library), the discovery
//! scheduler and runs, the action executor and webhook processing.
//!
//! Empty until the job-engine capability lands; it may depend on `tenantry-domain`,
//! `tenantry-graph` and `tenantry-store`.
