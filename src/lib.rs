//! The `tenantry` binary's library: the command line, configuration, logging, the private
//! PostgreSQL clusters of `dev` and `test-env`, and the wiring of the crates into a running
//! service.

pub mod cli;
mod commands;
pub mod postgres;
pub mod settings;
mod telemetry;
pub mod wiring;
