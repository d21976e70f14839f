//! A PostgreSQL cluster driven with `initdb` and `pg_ctl`, listening on 127.0.0.1 only
//! (no unix socket, so long folder paths never hit the socket-path limit), with SCRAM
//! password authentication and a generated password, so other local users cannot connect.
//!
//! - [`TempCluster`]: throwaway, durability off for speed; stopped and deleted when
//!   dropped. For the test suite.
//! - [`DevCluster`]: persistent in `tenantry dev`'s data folder, reused across runs, stopped
//!   when dropped if this process started it or adopted it from a `dev` that died
//!   (`postgres.owner` names the live `dev` responsible for it).
//!
//! When Tenantry runs as root, the cluster's folder belongs to an unprivileged user. Root
//! never follows a path inside that folder that the user could have replaced with a link:
//! the password file is written before the folder is handed over, command output goes into
//! errors instead of log files, and `postgresql.conf` is opened with `O_NOFOLLOW`.

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
    #[error("{program} failed ({status}): {output}")]
    Command {
        program: &'static str,
        status: String,
        output: String,
    },
    #[error("{0}")]
    Setup(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ClusterError {
    let what = what.into();
    move |source| ClusterError::Io { what, source }
}

/// The last part of a command's output, for an error message.
fn tail(output: &std::process::Output) -> String {
    let mut text = String::from_utf8_lossy(&output.stderr).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stdout));
    let text = text.trim();
    let start = text.char_indices().rev().nth(1500).map_or(0, |(i, _)| i);
    text[start..].to_owned()
}

/// One cluster: its programs, its data folder, its log and its port.
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
        Err(ClusterError::Command {
            program,
            status: output.status.to_string(),
            output: tail(&output),
        })
    }

    /// `initdb` the data folder (which must not exist yet) with a password from `pwfile`,
    /// and write the listen settings.
    fn init(
        &self,
        superuser: &str,
        pwfile: &Path,
        extra_settings: &[(&str, &str)],
    ) -> Result<(), ClusterError> {
        let mut initdb = self.run_as.command(&self.binaries.initdb);
        initdb
            .arg("-D")
            .arg(&self.data)
            .args([
                "-U",
                superuser,
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
                "--auth=scram-sha-256",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
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
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&conf)
            .map_err(io(format!("opening {}", conf.display())))?;
        let lines: String = settings
            .iter()
            .map(|(key, value)| format!("{key} = {value}\n"))
            .collect();
        file.write_all(format!("\n# written by tenantry\n{lines}").as_bytes())
            .map_err(io("writing postgresql.conf"))
    }

    /// Starts the server and waits until it accepts connections (also after a [`Self::stop`]).
    pub fn start(&self) -> Result<(), ClusterError> {
        let mut pg_ctl = self.run_as.command(&self.binaries.pg_ctl);
        pg_ctl
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(&self.log)
            .args(["-w", "-t", "60", "start"])
            .current_dir(&self.data);
        let started = self.run("pg_ctl start", pg_ctl);
        if started.is_err() && self.is_running() {
            // Timed out waiting, but a server is up: stop it rather than leave it behind.
            let _ = self.stop();
        }
        started
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

fn random_password() -> Result<String, ClusterError> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| ClusterError::Setup(format!("random source: {e}")))?;
    Ok(hex::encode(bytes))
}

/// Prepares `root` (created empty, owned by us, mode 0700) with a password file for
/// `initdb`, and only then hands the folder and the file to `run_as`: nothing the
/// unprivileged user controls is ever opened by root.
fn prepare_root(run_as: &RunAs, root: &Path, password: &str) -> Result<PathBuf, ClusterError> {
    std::fs::create_dir_all(root).map_err(io(format!("creating {}", root.display())))?;
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o700))
        .map_err(io(format!("securing {}", root.display())))?;
    let pwfile = root.join("initdb.pw");
    let file = create_new_private(&pwfile, password.as_bytes())?;
    run_as
        .give_file(&file)
        .map_err(io("handing the password file over"))?;
    run_as.give(root).map_err(io(format!(
        "handing {} to {}",
        root.display(),
        run_as.name()
    )))?;
    Ok(pwfile)
}

/// A throwaway cluster for one test run.
pub struct TempCluster {
    cluster: Cluster,
    password: String,
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
        let password = random_password()?;
        let pwfile = prepare_root(&run_as, root.path(), &password)?;
        let cluster = Cluster {
            binaries,
            run_as,
            data: root.path().join("data"),
            log: root.path().join("postgres.log"),
            port: free_port()?,
        };
        let initialised = cluster.init(
            "postgres",
            &pwfile,
            &[
                ("fsync", "off"),
                ("synchronous_commit", "off"),
                ("full_page_writes", "off"),
                ("max_connections", "300"),
                ("shared_buffers", "'128MB'"),
            ],
        );
        let _ = std::fs::remove_file(&pwfile);
        initialised?;
        cluster.start()?;
        Ok(Self {
            cluster,
            password,
            _root: root,
        })
    }

    /// A superuser URL (tests create a database each).
    pub fn url(&self) -> String {
        format!(
            "postgres://postgres:{}@127.0.0.1:{}/postgres",
            self.password,
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

/// Which `dev` process is responsible for stopping the running cluster, in
/// `<data dir>/postgres.owner`: its pid and its start time (so a reused pid is not
/// mistaken for it).
#[derive(Serialize, Deserialize, PartialEq, Eq, Debug)]
struct Owner {
    pid: u32,
    started: u64,
}

impl Owner {
    fn this_process() -> Option<Self> {
        let pid = std::process::id();
        Some(Self {
            pid,
            started: process_start(pid)?,
        })
    }

    fn is_alive(&self) -> bool {
        process_start(self.pid) == Some(self.started)
    }
}

/// When process `pid` started (clock ticks after boot, field 22 of `/proc/<pid>/stat`),
/// or `None` when there is no such process.
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// The persistent cluster of `tenantry dev`.
pub struct DevCluster {
    cluster: Cluster,
    record: DevClusterRecord,
    /// Whether this process is responsible for the cluster (and so stops it when
    /// dropped): it started it, or adopted one left running by a `dev` that died.
    pub started_here: bool,
    owner_path: PathBuf,
}

impl DevCluster {
    /// Creates the cluster on first use, starts it when it is not running.
    pub fn ensure(data_dir: &Path) -> Result<Self, ClusterError> {
        let record_path = data_dir.join("postgres.json");
        let owner_path = data_dir.join("postgres.owner");
        let binaries = PgBinaries::locate_or_install()?;
        let run_as = RunAs::detect().map_err(ClusterError::Setup)?;
        let record = match std::fs::read(&record_path) {
            Ok(bytes) => Some(
                serde_json::from_slice::<DevClusterRecord>(&bytes).map_err(|e| {
                    ClusterError::Setup(format!(
                        "{} is not valid ({e}); delete it and the cluster folder to start over",
                        record_path.display()
                    ))
                })?,
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io(format!("reading {}", record_path.display()))(e)),
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
                        owner_path: owner_path.clone(),
                    },
                    false,
                )
            }
            None => (
                Self::create(data_dir, binaries, run_as, owner_path.clone())?,
                true,
            ),
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
        } else if !dev.owned_by_a_live_dev() {
            // Left running by a `dev` that died (or started by hand): nobody else will
            // stop it, so this process does when it stops.
            tracing::info!(
                "adopting the private PostgreSQL left running; it stops with this process"
            );
            dev.started_here = true;
        }
        if dev.started_here
            && let Some(owner) = Owner::this_process()
        {
            let json =
                serde_json::to_vec(&owner).map_err(|e| ClusterError::Setup(e.to_string()))?;
            write_private(&dev.owner_path, &json)?;
        }
        Ok(dev)
    }

    /// Whether another `dev`, still running, is responsible for the running cluster.
    fn owned_by_a_live_dev(&self) -> bool {
        std::fs::read(&self.owner_path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Owner>(&bytes).ok())
            .is_some_and(|owner| owner.pid != std::process::id() && owner.is_alive())
    }

    fn create(
        data_dir: &Path,
        binaries: PgBinaries,
        run_as: RunAs,
        owner_path: PathBuf,
    ) -> Result<Self, ClusterError> {
        std::fs::create_dir_all(data_dir)
            .map_err(io(format!("creating {}", data_dir.display())))?;
        let data_dir = data_dir
            .canonicalize()
            .map_err(io(format!("resolving {}", data_dir.display())))?;
        let root = if run_as.can_traverse(&data_dir) {
            data_dir.join("postgres")
        } else {
            // e.g. a checkout under /root (mode 0700) that the postgres user cannot enter.
            let tag = path_tag(data_dir.as_os_str().as_encoded_bytes());
            PathBuf::from(format!("/var/lib/tenantry/dev-{tag}"))
        };
        if root.exists() {
            // Never delete a cluster we have no record of: it may hold someone's data, or
            // still be running.
            return Err(ClusterError::Setup(format!(
                "{} exists but {} does not describe it; delete the folder to start over",
                root.display(),
                data_dir.join("postgres.json").display()
            )));
        }
        let password = random_password()?;
        let pwfile = prepare_root(&run_as, &root, &password)?;
        let cluster = Cluster {
            binaries,
            run_as,
            data: root.join("data"),
            log: root.join("postgres.log"),
            port: free_port()?,
        };
        let initialised = cluster.init("tenantry", &pwfile, &[]);
        let _ = std::fs::remove_file(&pwfile);
        initialised?;
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
            owner_path,
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

impl Drop for DevCluster {
    fn drop(&mut self) {
        if self.started_here {
            match self.cluster.stop() {
                Ok(()) => {
                    tracing::info!("private PostgreSQL stopped");
                    let _ = std::fs::remove_file(&self.owner_path);
                }
                Err(error) => eprintln!("stopping the private PostgreSQL cluster: {error}"),
            }
        }
    }
}

/// Creates `path` (which must not exist, and is never a followed link) readable only by
/// its owner, with `content`.
fn create_new_private(path: &Path, content: &[u8]) -> Result<std::fs::File, ClusterError> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
        .map_err(io(format!("creating {}", path.display())))?;
    file.write_all(content)
        .map_err(io(format!("writing {}", path.display())))?;
    Ok(file)
}

/// Replaces `path` with a file only its owner can read (written aside, then renamed).
pub(crate) fn write_private(path: &Path, content: &[u8]) -> Result<(), ClusterError> {
    let tmp = path.with_extension("tmp");
    match std::fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(format!("removing {}", tmp.display()))(e)),
    }
    create_new_private(&tmp, content)?;
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
