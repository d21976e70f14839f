//! The `tenantry` command; everything lives in the library so tests can reach it.

use std::process::ExitCode;

fn main() -> ExitCode {
    tenantry_graph::install_default_crypto();
    tenantry::cli::main()
}
