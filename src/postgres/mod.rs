//! A private PostgreSQL cluster, for `tenantry dev` (persistent, in its data folder) and for
//! `tenantry test-env` (throwaway, for the test suite), built from the machine's own
//! `initdb`/`pg_ctl`, installed from Debian's packages when missing.
//!
//! PostgreSQL refuses to run as root, so when Tenantry runs as root the cluster's files
//! belong to, and its processes run as, the `postgres` user (or `nobody`).

mod binaries;
mod cluster;
mod run_as;

pub use binaries::PgBinaries;
pub(crate) use cluster::write_private;
pub use cluster::{Cluster, ClusterError, DevCluster, TempCluster};
