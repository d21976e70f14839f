//! Layered configuration: the built-in defaults (`config/default.toml`, also compiled in),
//! then `config/<env>.toml`, then `TENANTRY__SECTION__KEY` environment variables.
//!
//! Secrets (the database URL's password, the master key, the API-key pepper) are typed
//! [`SecretString`], so `Debug` never prints them, and they are refused in config files:
//! they come from the environment, or from a file named by `TENANTRY__SECTION__KEY_FILE`
//! (Docker/Kubernetes secrets). Unknown keys are errors, so a typo in a variable name
//! does not silently fall back to a default.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use config::{Config, Environment, File, FileFormat};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tenantry_api::ApiConfig;
use tenantry_store::ApiKeyPepper;

const EMBEDDED_DEFAULTS: &str = include_str!("../config/default.toml");
const ENV_PREFIX: &str = "TENANTRY";

/// Keys that hold secrets: refused in files, accepted from `…` and `…_FILE` variables.
const SECRET_KEYS: [&str; 3] = [
    "database.url",
    "secrets.master_key",
    "secrets.api_key_pepper",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub http: ApiConfig,
    pub database: DatabaseSettings,
    #[serde(default)]
    pub secrets: SecretsSettings,
    pub microsoft: MicrosoftSettings,
    pub log: LogSettings,
    pub dev: DevSettings,
    pub jobs: JobSettings,
}

/// The job engine (`[jobs]`, `TENANTRY__JOBS__…`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSettings {
    /// Jobs one process runs at once.
    pub concurrency: usize,
    /// Jobs running at once for one organization, across every worker process.
    pub per_organization: i64,
    /// Jobs running at once in total, across every worker process.
    pub global: i64,
    pub poll_interval_ms: u64,
    pub heartbeat_secs: u64,
    /// A job whose worker missed heartbeats for this long is picked up by another.
    pub lease_secs: u64,
    /// How long SIGTERM waits for running jobs before giving them back to the queue.
    pub drain_secs: u64,
    /// Snoozes for throttling before a job counts the next one as a failed attempt.
    pub max_snoozes: i32,
    /// Wake on PostgreSQL's notification of a new job, besides polling (turn off behind a
    /// pooler in transaction mode, which cannot hold a `LISTEN`).
    #[serde(default = "listen_by_default")]
    pub listen: bool,
}

fn listen_by_default() -> bool {
    true
}

impl JobSettings {
    pub fn engine(&self) -> tenantry_jobs::EngineConfig {
        tenantry_jobs::EngineConfig {
            concurrency: self.concurrency.max(1),
            per_organization: self.per_organization.max(1),
            global: self.global.max(1),
            poll_interval: std::time::Duration::from_millis(self.poll_interval_ms.max(10)),
            heartbeat_interval: std::time::Duration::from_secs(self.heartbeat_secs.max(1)),
            lease: std::time::Duration::from_secs(self.lease_secs.max(2)),
            drain: std::time::Duration::from_secs(self.drain_secs),
            max_snoozes: self.max_snoozes.max(0),
            listen: self.listen,
        }
    }

    pub fn leader(&self) -> tenantry_jobs::LeaderConfig {
        tenantry_jobs::LeaderConfig {
            lease: std::time::Duration::from_secs(self.lease_secs.max(2)),
            ..Default::default()
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `TENANTRY__DATABASE__URL`, e.g. `postgres://tenantry:…@db:5432/tenantry`.
    pub url: Option<SecretString>,
    pub max_connections: u32,
    pub acquire_timeout_secs: u64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsSettings {
    /// `TENANTRY__SECRETS__MASTER_KEY`: base64 of 32 bytes; seals organizations' data keys.
    pub master_key: Option<SecretString>,
    /// `TENANTRY__SECRETS__API_KEY_PEPPER`: base64 of at least 32 bytes; keys API-key HMACs.
    pub api_key_pepper: Option<SecretString>,
    /// `TENANTRY__SECRETS__PREVIOUS_MASTER_KEYS`: comma-separated older master keys, kept
    /// while `tenantry keys rotate` re-seals data keys under the current one.
    pub previous_master_keys: Option<SecretString>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MicrosoftSettings {
    /// `TENANTRY__MICROSOFT__AUTHORITY_URL`
    pub authority_url: String,
    /// `TENANTRY__MICROSOFT__GRAPH_URL`
    pub graph_url: String,
    /// `TENANTRY__MICROSOFT__EXCHANGE_URL`: the Exchange Online admin API's host.
    pub exchange_url: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub filter: String,
    pub format: LogFormat,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevSettings {
    pub data_dir: PathBuf,
    /// Where `dev` runs the Microsoft simulator (port 0: any free port).
    pub graph_sim_addr: String,
    /// Serve the simulator over HTTPS (its CA is written to the data folder).
    #[serde(default)]
    pub graph_sim_tls: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("configuration: {0}")]
    Config(#[from] config::ConfigError),
    #[error(
        "{key} is a secret and may not be set in a config file; set {var} (or {var}_FILE) instead"
    )]
    SecretInFile { key: &'static str, var: String },
    #[error("{var}_FILE names {path}, which cannot be read: {source}")]
    SecretFile {
        var: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} is not set")]
    Missing(String),
    #[error("{var} must be base64 of {expected}")]
    BadSecret { var: String, expected: &'static str },
}

/// Where settings come from: the config folder, the environment's name, and the process
/// environment (injected, so tests need not touch the real one).
pub struct Sources {
    pub config_dir: PathBuf,
    pub env_name: Option<String>,
    pub vars: HashMap<String, String>,
}

impl Sources {
    /// The real process environment; `TENANTRY_ENV` names the environment (unless the
    /// command implies one) and `TENANTRY_CONFIG_DIR` the folder (default `config`).
    pub fn from_process(implied_env: Option<&str>) -> Self {
        let vars: HashMap<String, String> = std::env::vars().collect();
        Self {
            config_dir: vars
                .get("TENANTRY_CONFIG_DIR")
                .map_or_else(|| PathBuf::from("config"), PathBuf::from),
            env_name: vars
                .get("TENANTRY_ENV")
                .cloned()
                .or_else(|| implied_env.map(str::to_owned)),
            vars,
        }
    }
}

impl Settings {
    pub fn load(sources: &Sources) -> Result<Self, SettingsError> {
        let files = file_layers(&sources.config_dir, sources.env_name.as_deref()).build()?;
        for key in SECRET_KEYS {
            let in_file = files.get_string(key).ok();
            let refused = match key {
                // A database URL without a password is not a secret.
                "database.url" => in_file.as_deref().is_some_and(url_has_password),
                _ => in_file.is_some(),
            };
            if refused {
                return Err(SettingsError::SecretInFile {
                    key,
                    var: env_var_name(key),
                });
            }
        }
        let env = environment_layer(&sources.vars)?;
        let settings = file_layers(&sources.config_dir, sources.env_name.as_deref())
            .add_source(
                Environment::with_prefix(ENV_PREFIX)
                    .prefix_separator("__")
                    .separator("__")
                    .list_separator(",")
                    .with_list_parse_key("http.cors_allowed_origins")
                    .with_list_parse_key("http.trusted_proxies")
                    .try_parsing(true)
                    .source(Some(env)),
            )
            .build()?
            .try_deserialize()?;
        Ok(settings)
    }

    /// The database URL, or a message saying how to provide one.
    pub fn database_url(&self) -> Result<&SecretString, SettingsError> {
        self.database
            .url
            .as_ref()
            .ok_or_else(|| SettingsError::Missing(env_var_name("database.url")))
    }

    /// The decoded API-key pepper.
    pub fn api_key_pepper(&self) -> Result<ApiKeyPepper, SettingsError> {
        let var = env_var_name("secrets.api_key_pepper");
        let encoded = self
            .secrets
            .api_key_pepper
            .as_ref()
            .ok_or_else(|| SettingsError::Missing(var.clone()))?;
        let bad = || SettingsError::BadSecret {
            var: var.clone(),
            expected: "at least 32 bytes",
        };
        let bytes = BASE64
            .decode(encoded.expose_secret().trim())
            .map_err(|_| bad())?;
        ApiKeyPepper::new(bytes).map_err(|_| bad())
    }

    /// The master keys: the current one (required) and any previous ones.
    pub fn keyring(&self) -> Result<tenantry_store::sealing::Keyring, SettingsError> {
        let var = env_var_name("secrets.master_key");
        let encoded = self
            .secrets
            .master_key
            .as_ref()
            .ok_or_else(|| SettingsError::Missing(var.clone()))?;
        let decode = |value: &str, var: String| {
            BASE64
                .decode(value.trim())
                .ok()
                .filter(|bytes| bytes.len() == 32)
                .ok_or(SettingsError::BadSecret {
                    var,
                    expected: "exactly 32 bytes",
                })
        };
        let current = decode(encoded.expose_secret(), var)?;
        let previous: Vec<Vec<u8>> = match &self.secrets.previous_master_keys {
            None => Vec::new(),
            Some(list) => list
                .expose_secret()
                .split(',')
                .filter(|k| !k.trim().is_empty())
                .map(|k| decode(k, env_var_name("secrets.previous_master_keys")))
                .collect::<Result<_, _>>()?,
        };
        let previous: Vec<&[u8]> = previous.iter().map(Vec::as_slice).collect();
        tenantry_store::sealing::Keyring::new(&current, &previous).map_err(|_| {
            SettingsError::BadSecret {
                var: env_var_name("secrets.master_key"),
                expected: "exactly 32 bytes",
            }
        })
    }

    /// Checks the master key's shape when one is set (it is used from the credential-sealing
    /// capability on).
    pub fn check_master_key(&self) -> Result<(), SettingsError> {
        let Some(encoded) = &self.secrets.master_key else {
            return Ok(());
        };
        let var = env_var_name("secrets.master_key");
        match BASE64.decode(encoded.expose_secret().trim()) {
            Ok(bytes) if bytes.len() == 32 => Ok(()),
            _ => Err(SettingsError::BadSecret {
                var,
                expected: "exactly 32 bytes",
            }),
        }
    }
}

fn file_layers(
    dir: &Path,
    env_name: Option<&str>,
) -> config::ConfigBuilder<config::builder::DefaultState> {
    let on_disk_defaults = dir.join("default.toml");
    let mut builder = Config::builder();
    builder = if on_disk_defaults.is_file() {
        builder.add_source(File::from(on_disk_defaults).format(FileFormat::Toml))
    } else {
        builder.add_source(File::from_str(EMBEDDED_DEFAULTS, FileFormat::Toml))
    };
    if let Some(name) = env_name {
        builder = builder.add_source(
            File::from(dir.join(format!("{name}.toml")))
                .format(FileFormat::Toml)
                .required(false),
        );
    }
    builder
}

/// The `TENANTRY__…` variables, with each `…_FILE` secret replaced by its file's content.
fn environment_layer(
    vars: &HashMap<String, String>,
) -> Result<config::Map<String, String>, SettingsError> {
    let mut layer: config::Map<String, String> = vars
        .iter()
        .filter(|(name, _)| name.starts_with("TENANTRY__"))
        .filter(|(name, _)| {
            !SECRET_KEYS
                .iter()
                .any(|key| **name == format!("{}_FILE", env_var_name(key)))
        })
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    for key in SECRET_KEYS {
        let var = env_var_name(key);
        if let Some(path) = vars.get(&format!("{var}_FILE")) {
            let path = PathBuf::from(path);
            let content =
                std::fs::read_to_string(&path).map_err(|source| SettingsError::SecretFile {
                    var: var.clone(),
                    path: path.clone(),
                    source,
                })?;
            layer.insert(var, content.trim().to_owned());
        }
    }
    Ok(layer)
}

/// `secrets.master_key` → `TENANTRY__SECRETS__MASTER_KEY`.
pub fn env_var_name(key: &str) -> String {
    format!(
        "{ENV_PREFIX}__{}",
        key.replace('.', "__").to_ascii_uppercase()
    )
}

/// Whether a `scheme://user:password@host/…` URL carries a password (in the authority or
/// as a `password=` query parameter).
fn url_has_password(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let in_authority = authority
        .rsplit_once('@')
        .is_some_and(|(userinfo, _)| userinfo.contains(':'));
    // sqlx also takes the password as a query parameter.
    let in_query = rest.split_once('?').is_some_and(|(_, query)| {
        query
            .split('&')
            .any(|pair| pair.to_ascii_lowercase().starts_with("password="))
    });
    in_authority || in_query
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(env_name: Option<&str>, vars: &[(&str, &str)]) -> (tempfile::TempDir, Sources) {
        let dir = tempfile::tempdir().expect("temp dir");
        let sources = Sources {
            config_dir: dir.path().to_path_buf(),
            env_name: env_name.map(str::to_owned),
            vars: vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        (dir, sources)
    }

    #[test]
    fn defaults_load_without_any_file_or_variable() {
        let (_dir, sources) = sources(None, &[]);
        let settings = Settings::load(&sources).expect("defaults load");
        assert_eq!(settings.http.addr, "127.0.0.1:8080");
        assert_eq!(
            settings.microsoft.authority_url,
            "https://login.microsoftonline.com"
        );
        assert_eq!(settings.microsoft.graph_url, "https://graph.microsoft.com");
        assert!(settings.database.url.is_none());
    }

    #[test]
    fn environment_file_then_variables_override_defaults() {
        let (dir, sources) = sources(
            Some("staging"),
            &[
                ("TENANTRY__HTTP__ADDR", "0.0.0.0:9999"),
                ("TENANTRY__MICROSOFT__GRAPH_URL", "http://127.0.0.1:9000"),
                (
                    "TENANTRY__HTTP__CORS_ALLOWED_ORIGINS",
                    "https://a.example,https://b.example",
                ),
                ("UNRELATED", "ignored"),
            ],
        );
        std::fs::write(
            dir.path().join("staging.toml"),
            "[http]\naddr = \"10.0.0.1:80\"\nbody_limit_bytes = 2048\n[log]\nformat = \"json\"\n",
        )
        .expect("write staging.toml");
        let settings = Settings::load(&sources).expect("loads");
        assert_eq!(
            settings.http.addr, "0.0.0.0:9999",
            "the variable beats the file"
        );
        assert_eq!(
            settings.http.body_limit_bytes, 2048,
            "the file beats the default"
        );
        assert_eq!(settings.log.format, LogFormat::Json);
        assert_eq!(settings.microsoft.graph_url, "http://127.0.0.1:9000");
        assert_eq!(
            settings.http.cors_allowed_origins,
            ["https://a.example", "https://b.example"]
        );
    }

    #[test]
    fn a_misspelt_variable_is_an_error_not_a_silent_default() {
        let (_dir, sources) = sources(None, &[("TENANTRY__HTTP__ADRR", "0.0.0.0:1")]);
        let error = Settings::load(&sources).expect_err("unknown key");
        assert!(error.to_string().contains("adrr"), "{error}");
    }

    #[test]
    fn secrets_are_refused_in_config_files() {
        let (dir, sources) = sources(Some("prod"), &[]);
        std::fs::write(
            dir.path().join("prod.toml"),
            "[secrets]\nmaster_key = \"AAAA\"\n",
        )
        .expect("write");
        let error = Settings::load(&sources).expect_err("secret in file");
        assert!(
            matches!(
                error,
                SettingsError::SecretInFile {
                    key: "secrets.master_key",
                    ..
                }
            ),
            "{error}"
        );

        std::fs::write(
            dir.path().join("prod.toml"),
            "[database]\nurl = \"postgres://u:pw@db/t\"\n",
        )
        .expect("write");
        assert!(matches!(
            Settings::load(&sources),
            Err(SettingsError::SecretInFile {
                key: "database.url",
                ..
            })
        ));

        std::fs::write(
            dir.path().join("prod.toml"),
            "[database]\nurl = \"postgres://u@db/t\"\n",
        )
        .expect("write");
        assert!(
            Settings::load(&sources).is_ok(),
            "a URL without a password is fine in a file"
        );
    }

    #[test]
    fn secrets_come_from_variables_or_files_and_never_print() {
        let (dir, mut sources) = sources(None, &[]);
        let pepper = BASE64.encode([42u8; 32]);
        let pepper_file = dir.path().join("pepper");
        std::fs::write(&pepper_file, format!("{pepper}\n")).expect("write pepper");
        sources.vars.insert(
            "TENANTRY__SECRETS__API_KEY_PEPPER_FILE".into(),
            pepper_file.display().to_string(),
        );
        sources.vars.insert(
            "TENANTRY__DATABASE__URL".into(),
            "postgres://u:hunter2@db/t".into(),
        );
        sources.vars.insert(
            "TENANTRY__SECRETS__MASTER_KEY".into(),
            BASE64.encode([7u8; 32]),
        );
        let settings = Settings::load(&sources).expect("loads");
        assert!(settings.api_key_pepper().is_ok());
        assert!(settings.check_master_key().is_ok());
        assert_eq!(
            settings.database_url().expect("set").expose_secret(),
            "postgres://u:hunter2@db/t"
        );
        let printed = format!("{settings:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(!printed.contains(&pepper), "{printed}");
    }

    #[test]
    fn malformed_secrets_are_reported_by_variable_name() {
        let (_dir, sources) = sources(
            None,
            &[
                ("TENANTRY__SECRETS__API_KEY_PEPPER", "c2hvcnQ="),
                ("TENANTRY__SECRETS__MASTER_KEY", "!!"),
            ],
        );
        let settings = Settings::load(&sources).expect("loads");
        let error = settings.api_key_pepper().expect_err("too short");
        assert!(
            error
                .to_string()
                .contains("TENANTRY__SECRETS__API_KEY_PEPPER")
        );
        assert!(settings.check_master_key().is_err());
    }

    #[test]
    fn finds_passwords_in_urls() {
        assert!(url_has_password("postgres://u:p@h/db"));
        assert!(!url_has_password("postgres://u@h/db"));
        assert!(!url_has_password("postgres://h/db?user=a"));
        assert!(url_has_password("postgres://h/db?user=a&password=b"));
    }
}
