//! A PostgreSQL cluster driven with `initdb` and `pg_ctl`, listening on 127.0.0.1 only
//! (no unix socket, so long folder paths never hit the socket-path limit).
//!
//! - [`TempCluster`]: throwaway, trust authentication, durability off for speed; stopped
//!   and deleted when dropped. For the test suite.
//! - [`DevCluster`]: persistent in `tenantry dev`'s data folder, password authentication,
//!   reused across runs.

use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::binaries::PgBinaries;
use super::run_as::RunAs;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("PostgreSQL is not available: {0}")]
    NotInstalled(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{program} failed ({status}); see {log}")]
    Command {
        program: &'static str,
        status: String,
        log: String,
    },
    #[error("{0}")]
    Setup(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ClusterError {
    let what = what.into();
    move |source| ClusterError::Io { what, source }
}

/// One cluster: its programs, its data folder and its port.
#[derive(Debug)]
pub struct Cluster {
    binaries: PgBinaries,
    run_as: RunAs,
    data: PathBuf,
    log: PathBuf,
    port: u16,
}

impl Cluster {
    fn run(&self, program: &'static str, mut command: Command) -> Result<(), ClusterError> {
        let output = command
            .stdin(Stdio::null())
            .output()
            .map_err(io(format!("starting {program}")))?;
        if output.status.success() {
            return Ok(());
        }
        let log = self.log.display().to_string();
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log);
        if let Ok(file) = file.as_mut() {
            let _ = file.write_all(&output.stdout);
            let _ = file.write_all(&output.stderr);
        }
        Err(ClusterError::Command {
            program,
            status: output.status.to_string(),
            log,
        })
    }

    /// `initdb` the data folder (which must not exist yet) and write the listen settings.
    fn init(
        &self,
        superuser: &str,
        auth: &[&str],
        extra_settings: &[(&str, &str)],
    ) -> Result<(), ClusterError> {
        let mut initdb = self.run_as.command(&self.binaries.initdb);
        initdb
            .arg("-D")
            .arg(&self.data)
            .args(["-U", superuser, "-E", "UTF8", "--no-locale", "--no-sync"])
            .args(auth)
            .current_dir(self.data.parent().unwrap_or(Path::new("/")));
        self.run("initdb", initdb)?;
        let mut settings = vec![
            ("listen_addresses", "'127.0.0.1'".to_owned()),
            ("unix_socket_directories", "''".to_owned()),
            ("port", self.port.to_string()),
        ];
        settings.extend(extra_settings.iter().map(|(k, v)| (*k, (*v).to_owned())));
        self.append_settings(&settings)
    }

    fn append_settings(&self, settings: &[(&str, String)]) -> Result<(), ClusterError> {
        let conf = self.data.join("postgresql.conf");
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&conf)
            .map_err(io(format!("opening {}", conf.display())))?;
        let lines: String = settings
            .iter()
            .map(|(key, value)| format!("{key} = {value}\n"))
            .collect();
        file.write_all(format!("\n# written by tenantry\n{lines}").as_bytes())
            .map_err(io("writing postgresql.conf"))
    }

    fn start(&self) -> Result<(), ClusterError> {
        let mut pg_ctl = self.run_as.command(&self.binaries.pg_ctl);
        pg_ctl
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(&self.log)
            .args(["-w", "-t", "60", "start"])
            .current_dir(&self.data);
        self.run("pg_ctl start", pg_ctl)
    }

    pub fn is_running(&self) -> bool {
        self.run_as
            .command(&self.binaries.pg_ctl)
            .arg("-D")
            .arg(&self.data)
            .arg("status")
            .current_dir(&self.data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    }

    pub fn stop(&self) -> Result<(), ClusterError> {
        let mut pg_ctl = self.run_as.command(&self.binaries.pg_ctl);
        pg_ctl
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "fast", "-w", "stop"])
            .current_dir(&self.data);
        self.run("pg_ctl stop", pg_ctl)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn data_dir(&self) -> &Path {
        &self.data
    }
}

/// A port nobody listens on right now.
fn free_port() -> Result<u16, ClusterError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(io("finding a free port"))?;
    Ok(listener
        .local_addr()
        .map_err(io("finding a free port"))?
        .port())
}

fn make_dir_for(run_as: &RunAs, dir: &Path) -> Result<(), ClusterError> {
    std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(io(format!("securing {}", dir.display())))?;
    run_as.give(dir).map_err(io(format!(
        "handing {} to {}",
        dir.display(),
        run_as.name()
    )))
}

/// A throwaway cluster for one test run.
pub struct TempCluster {
    cluster: Cluster,
    _root: tempfile::TempDir,
}

impl TempCluster {
    pub fn start() -> Result<Self, ClusterError> {
        let binaries = PgBinaries::locate_or_install()?;
        let run_as = RunAs::detect().map_err(ClusterError::Setup)?;
        let root = tempfile::Builder::new()
            .prefix("tenantry-test-pg-")
            .tempdir()
            .map_err(io("creating a temporary folder"))?;
        make_dir_for(&run_as, root.path())?;
        let cluster = Cluster {
            binaries,
            run_as,
            data: root.path().join("data"),
            log: root.path().join("postgres.log"),
            port: free_port()?,
        };
        cluster.init(
            "postgres",
            &["-A", "trust"],
            &[
                ("fsync", "off"),
                ("synchronous_commit", "off"),
                ("full_page_writes", "off"),
                ("max_connections", "300"),
                ("shared_buffers", "'128MB'"),
            ],
        )?;
        cluster.start()?;
        Ok(Self {
            cluster,
            _root: root,
        })
    }

    /// A superuser URL (tests create a database each).
    pub fn url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres",
            self.cluster.port()
        )
    }

    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }
}

impl Drop for TempCluster {
    fn drop(&mut self) {
        if let Err(error) = self.cluster.stop() {
            eprintln!("stopping the test PostgreSQL cluster: {error}");
        }
    }
}

/// What `tenantry dev` remembers about its cluster, in `<data dir>/postgres.json` (0600).
#[derive(Serialize, Deserialize)]
struct DevClusterRecord {
    pgdata: PathBuf,
    port: u16,
    user: String,
    password: String,
    database: String,
}

/// The persistent cluster of `tenantry dev`.
pub struct DevCluster {
    cluster: Cluster,
    record: DevClusterRecord,
    /// Whether this process started it (and so stops it on the way out).
    pub started_here: bool,
}

impl DevCluster {
    /// Creates the cluster on first use, starts it when it is not running.
    pub fn ensure(data_dir: &Path) -> Result<Self, ClusterError> {
        let record_path = data_dir.join("postgres.json");
        let binaries = PgBinaries::locate_or_install()?;
        let run_as = RunAs::detect().map_err(ClusterError::Setup)?;
        let record = match std::fs::read(&record_path) {
            Ok(bytes) => serde_json::from_slice::<DevClusterRecord>(&bytes)
                .ok()
                .filter(|record| record.pgdata.join("PG_VERSION").is_file()),
            Err(_) => None,
        };
        let (mut dev, fresh) = match record {
            Some(record) => {
                let log = record.pgdata.with_file_name("postgres.log");
                let cluster = Cluster {
                    binaries,
                    run_as,
                    data: record.pgdata.clone(),
                    log,
                    port: record.port,
                };
                (
                    Self {
                        cluster,
                        record,
                        started_here: false,
                    },
                    false,
                )
            }
            None => (Self::create(data_dir, binaries, run_as)?, true),
        };
        if fresh {
            dev.save(&record_path)?;
        }
        if !dev.cluster.is_running() {
            if dev.cluster.start().is_err() {
                // The remembered port may have been taken since; move once and retry.
                dev.cluster.port = free_port()?;
                dev.record.port = dev.cluster.port;
                dev.cluster
                    .append_settings(&[("port", dev.cluster.port.to_string())])?;
                dev.save(&record_path)?;
                dev.cluster.start()?;
            }
            dev.started_here = true;
        }
        Ok(dev)
    }

    fn create(data_dir: &Path, binaries: PgBinaries, run_as: RunAs) -> Result<Self, ClusterError> {
        std::fs::create_dir_all(data_dir)
            .map_err(io(format!("creating {}", data_dir.display())))?;
        let data_dir = data_dir
            .canonicalize()
            .map_err(io(format!("resolving {}", data_dir.display())))?;
        let root = if run_as.can_traverse(&data_dir) {
            data_dir.join("postgres")
        } else {
            // e.g. a checkout under /root (mode 0700) that the postgres user cannot enter.
            let digest = path_tag(data_dir.as_os_str().as_encoded_bytes());
            PathBuf::from(format!("/var/lib/tenantry/dev-{digest}"))
        };
        if root.exists() {
            std::fs::remove_dir_all(&root).map_err(io(format!("clearing {}", root.display())))?;
        }
        make_dir_for(&run_as, &root)?;
        let mut password = [0u8; 24];
        getrandom::fill(&mut password)
            .map_err(|e| ClusterError::Setup(format!("random source: {e}")))?;
        let password = hex::encode(password);
        let pwfile = root.join("initdb.pw");
        write_private(&pwfile, password.as_bytes())?;
        run_as
            .give(&pwfile)
            .map_err(io("handing the password file over"))?;
        let cluster = Cluster {
            binaries,
            run_as,
            data: root.join("data"),
            log: root.join("postgres.log"),
            port: free_port()?,
        };
        let pwfile_arg = format!("--pwfile={}", pwfile.display());
        let result = cluster.init("tenantry", &["--auth=scram-sha-256", &pwfile_arg], &[]);
        let _ = std::fs::remove_file(&pwfile);
        result?;
        let record = DevClusterRecord {
            pgdata: cluster.data.clone(),
            port: cluster.port,
            user: "tenantry".into(),
            password,
            database: "tenantry".into(),
        };
        Ok(Self {
            cluster,
            record,
            started_here: false,
        })
    }

    fn save(&self, path: &Path) -> Result<(), ClusterError> {
        let json = serde_json::to_vec_pretty(&self.record)
            .map_err(|e| ClusterError::Setup(e.to_string()))?;
        write_private(path, &json)
    }

    /// The URL of the maintenance database (to create the application database).
    pub fn admin_url(&self) -> SecretString {
        self.url_for("postgres")
    }

    /// The URL of the application database.
    pub fn url(&self) -> SecretString {
        self.url_for(&self.record.database)
    }

    pub fn database(&self) -> &str {
        &self.record.database
    }

    fn url_for(&self, database: &str) -> SecretString {
        SecretString::from(format!(
            "postgres://{}:{}@127.0.0.1:{}/{database}",
            self.record.user,
            self.record.password,
            self.cluster.port()
        ))
    }

    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }
}

/// Writes a file only its owner can read.
pub(crate) fn write_private(path: &Path, content: &[u8]) -> Result<(), ClusterError> {
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io(format!("writing {}", tmp.display())))?;
    file.write_all(content)
        .map_err(io(format!("writing {}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(io(format!("writing {}", path.display())))
}

/// A short tag naming a folder; only used when the cluster is created (its path is then
/// remembered), so it need not be stable across Rust releases.
fn path_tag(bytes: &[u8]) -> String {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut hasher = DefaultHasher::new();
    bytes.hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

impl std::fmt::Debug for DevCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevCluster")
            .field("cluster", &self.cluster)
            .field("password", &"[REDACTED]")
            .finish()
    }
}
