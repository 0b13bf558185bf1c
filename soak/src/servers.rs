//! Private PostgreSQL and Redis servers on their own ports and directories, which the fault tests
//! kill and restart (never the shared servers other tests use).
//!
//! PostgreSQL refuses to run as root: when this process is root, the data directory is handed to
//! the `postgres` user and the server programs run through `runuser -u postgres --`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use tempfile::TempDir;
use tokio::process::{Child, Command};

/// Why a private server could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The server's programs are not installed: tests skip (or fail when services are required).
    #[error("{0} is not installed")]
    NotInstalled(String),
    /// The server did not start or stop as asked.
    #[error("{0}")]
    Failed(String),
}

/// How long a server may take to start.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A loopback port nobody listens on right now.
pub fn free_port() -> Result<u16, ServerError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(|e| ServerError::Failed(format!("no free port: {e}")))
}

fn failed(what: &str, error: impl std::fmt::Display) -> ServerError {
    ServerError::Failed(format!("{what}: {error}"))
}

fn private_dir(prefix: &str) -> Result<TempDir, ServerError> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(|e| failed("cannot create a temporary directory", e))
}

/// A PostgreSQL cluster of its own: `initdb` into a temporary directory, served on a free port.
#[derive(Debug)]
pub struct PrivatePostgres {
    dir: TempDir,
    bin: PathBuf,
    port: u16,
    as_postgres_user: bool,
}

/// The directory holding `pg_ctl` and `initdb`: on the `PATH`, or the newest
/// `/usr/lib/postgresql/<version>/bin` (Debian's layout).
fn postgres_bin() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("pg_ctl").is_file() && dir.join("initdb").is_file() {
                return Some(dir);
            }
        }
    }
    let versions = std::fs::read_dir("/usr/lib/postgresql").ok()?;
    versions
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("pg_ctl").is_file().then_some((version, bin))
        })
        .max_by_key(|(version, _)| *version)
        .map(|(_, bin)| bin)
}

async fn run(mut command: Command, what: &str) -> Result<(), ServerError> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| failed(what, e))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(ServerError::Failed(format!(
            "{what} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )))
    }
}

impl PrivatePostgres {
    /// Creates a cluster and starts it on a free port.
    pub async fn start() -> Result<PrivatePostgres, ServerError> {
        let bin = postgres_bin()
            .ok_or_else(|| ServerError::NotInstalled("PostgreSQL (initdb, pg_ctl)".to_owned()))?;
        let dir = private_dir("djsession-pg-")?;
        let owner = std::fs::metadata(dir.path())
            .map_err(|e| failed("cannot inspect the temporary directory", e))?
            .uid();
        let as_postgres_user = owner == 0;
        let server = PrivatePostgres {
            dir,
            bin,
            port: free_port()?,
            as_postgres_user,
        };
        if as_postgres_user {
            let mut chown = Command::new("chown");
            chown.arg("postgres:").arg(server.dir.path());
            run(chown, "chown postgres (PostgreSQL refuses to run as root)").await?;
        }
        let mut initdb = server.command("initdb");
        initdb.arg("-D").arg(server.data()).args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
        ]);
        run(initdb, "initdb").await?;
        server.start_again().await?;
        Ok(server)
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres_user {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of its `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server (again) on the same port and data directory, waiting until it accepts
    /// connections (after crash recovery, if it was killed).
    pub async fn start_again(&self) -> Result<(), ServerError> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=60",
            self.port,
            self.dir.path().display()
        );
        let mut start = self.command("pg_ctl");
        start
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.path().join("server.log"))
            .args([
                "-w",
                "-t",
                &START_TIMEOUT.as_secs().to_string(),
                "-o",
                &options,
                "start",
            ]);
        run(start, "pg_ctl start").await.map_err(|e| {
            let log =
                std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
            ServerError::Failed(format!("{e}\nserver log:\n{log}"))
        })
    }

    /// Kills the server as a crash would (`pg_ctl stop -m immediate`: no checkpoint, crash
    /// recovery on the next start).
    pub async fn kill(&self) -> Result<(), ServerError> {
        let mut stop = self.command("pg_ctl");
        stop.arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"]);
        run(stop, "pg_ctl stop -m immediate").await
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let path = self.bin.join("pg_ctl");
        let mut stop = if self.as_postgres_user {
            let mut command = std::process::Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            std::process::Command::new(path)
        };
        // Best effort: the server may already be down.
        let _ = stop
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A `redis-server` of its own on a free port, with its own directory.
#[derive(Debug)]
pub struct PrivateRedis {
    dir: TempDir,
    port: u16,
    persistent: bool,
    child: Mutex<Option<Child>>,
}

impl PrivateRedis {
    /// Starts a server. `persistent` turns on the append-only file with an `fsync` before every
    /// reply (`appendonly yes`, `appendfsync always`), so every acknowledged write survives a
    /// kill; without it, a restarted server is empty.
    pub async fn start(persistent: bool) -> Result<PrivateRedis, ServerError> {
        let server = PrivateRedis {
            dir: private_dir("djsession-redis-")?,
            port: free_port()?,
            persistent,
            child: Mutex::new(None),
        };
        server.start_again().await?;
        Ok(server)
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The directory holding its append-only file.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Starts the server (again) on the same port and directory, waiting until it answers `PING`
    /// (after loading its append-only file).
    pub async fn start_again(&self) -> Result<(), ServerError> {
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", ""])
            .arg("--dir")
            .arg(self.dir.path())
            .kill_on_drop(true)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if self.persistent {
            command.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            command.args(["--appendonly", "no"]);
        }
        let child = match command.spawn() {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ServerError::NotInstalled("redis-server".to_owned()));
            }
            Err(e) => return Err(failed("cannot start redis-server", e)),
        };
        *self.child.lock().unwrap_or_else(PoisonError::into_inner) = Some(child);
        let port = self.port;
        tokio::task::spawn_blocking(move || wait_for_pong(port))
            .await
            .map_err(|e| failed("waiting for redis-server", e))?
    }

    /// Kills the server with `SIGKILL`.
    pub async fn kill(&self) -> Result<(), ServerError> {
        let child = self
            .child
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some(mut child) = child else {
            return Err(ServerError::Failed(
                "redis-server is not running".to_owned(),
            ));
        };
        child
            .kill()
            .await
            .map_err(|e| failed("cannot kill redis-server", e))
    }
}

/// Waits until a server on `port` answers `PING` with `PONG` (not `LOADING`).
fn wait_for_pong(port: u16) -> Result<(), ServerError> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
            let mut reply = [0u8; 64];
            if stream.write_all(b"PING\r\n").is_ok()
                && let Ok(n) = stream.read(&mut reply)
                && reply[..n].starts_with(b"+PONG")
            {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            return Err(ServerError::Failed(format!(
                "redis-server did not answer on port {port} within {START_TIMEOUT:?}"
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
