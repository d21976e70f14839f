//! The command line. Each subcommand's work lives in [`crate::commands`].

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tenantry_domain::Role;
use uuid::Uuid;

use crate::commands;

#[derive(Debug, Parser)]
#[command(
    name = "tenantry",
    version,
    about = "Multi-tenant Microsoft 365 management for MSPs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP API and the background workers in one process (migrates first).
    Serve,
    /// Run only the HTTP API.
    Api,
    /// Run only the background workers.
    Worker,
    /// Apply pending database migrations, then exit.
    Migrate,
    /// Everything on one machine: a private PostgreSQL, the Graph simulator, API and workers.
    Dev {
        /// Print one JSON line (url, api_key, msp_id, demo_tenants) once ready.
        #[arg(long)]
        json: bool,
    },
    /// Run the Microsoft identity platform + Graph simulator.
    GraphSim {
        /// The scenario to load (demo or empty).
        #[arg(long, default_value = "demo")]
        scenario: String,
        /// Load the scenario from a JSON file instead (the shape `PUT /_sim/scenario` takes).
        #[arg(long)]
        scenario_file: Option<std::path::PathBuf>,
        /// The address to listen on.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// The port to listen on.
        #[arg(long, default_value_t = 9000)]
        port: u16,
        /// Serve HTTPS (as `https://localhost:<port>`), as Microsoft's SDKs require.
        #[arg(long)]
        tls: bool,
        /// The certificate chain to serve (PEM), with --tls-key; generated when absent.
        #[arg(long, requires = "tls_key", requires = "tls")]
        tls_cert: Option<std::path::PathBuf>,
        /// The private key of --tls-cert (PEM).
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<std::path::PathBuf>,
        /// Where to write the CA certificate clients should trust (default: a temporary file).
        #[arg(long, requires = "tls")]
        ca_out: Option<std::path::PathBuf>,
    },
    /// Operator tasks across MSPs.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Master-key management.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Run a command with DATABASE_URL pointing at a throwaway PostgreSQL cluster, which is
    /// removed afterwards (used by the test suite).
    TestEnv {
        /// The command and its arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        command: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Create an MSP and print its first owner API key (shown once).
    CreateMsp {
        #[arg(long)]
        name: String,
        /// The person who holds the first owner key (a name or email address); defaults to
        /// "Owner of <name>".
        #[arg(long)]
        operator: Option<String>,
        /// Print one JSON object with msp_id and api_key.
        #[arg(long)]
        json: bool,
    },
    /// Create an API key for an MSP and print it (shown once).
    CreateKey {
        #[arg(long)]
        msp: Uuid,
        /// owner, admin, technician or viewer.
        #[arg(long)]
        role: Role,
        /// What the key is for.
        #[arg(long, default_value = "created with tenantry admin")]
        name: String,
        /// A new person who holds the key (a name or email address). Without it or
        /// --operator-id, the key gets a person of its own, named after the key.
        #[arg(long, conflicts_with = "operator_id")]
        operator: Option<String>,
        /// An existing operator of the MSP (e.g. a replacement key for someone who lost
        /// theirs): the key approves as that person.
        #[arg(long)]
        operator_id: Option<Uuid>,
        /// Print one JSON object with msp_id and api_key.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Re-seal every organization's data key under the current master key.
    Rotate,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: starting the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve => commands::serve::run(commands::serve::Mode::ApiAndWorkers).await,
            Command::Api => commands::serve::run(commands::serve::Mode::ApiOnly).await,
            Command::Migrate => commands::migrate::run().await,
            Command::Dev { json } => commands::dev::run(json).await,
            Command::Admin {
                command:
                    AdminCommand::CreateMsp {
                        name,
                        operator,
                        json,
                    },
            } => commands::admin::create_msp(&name, operator.as_deref(), json).await,
            Command::Admin {
                command:
                    AdminCommand::CreateKey {
                        msp,
                        role,
                        name,
                        operator,
                        operator_id,
                        json,
                    },
            } => {
                let holder = commands::admin::Holder {
                    name: operator,
                    id: operator_id,
                };
                commands::admin::create_key(msp, role, &name, holder, json).await
            }
            Command::TestEnv { command } => commands::test_env::run(command).await,
            Command::Worker => commands::worker::run().await,
            Command::GraphSim {
                scenario,
                scenario_file,
                host,
                port,
                tls,
                tls_cert,
                tls_key,
                ca_out,
            } => {
                let tls = tls.then_some(commands::graph_sim::TlsFiles {
                    cert: tls_cert,
                    key: tls_key,
                    ca_out,
                });
                commands::graph_sim::run(&scenario, scenario_file.as_deref(), &host, port, tls)
                    .await
            }
            Command::Keys {
                command: KeysCommand::Rotate,
            } => commands::keys::rotate().await,
        }
    });
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
