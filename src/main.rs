//! The `tenantry` command; everything lives in the library so tests can reach it.

use std::process::ExitCode;

fn main() -> ExitCode {
    tenantry::cli::main()
}
