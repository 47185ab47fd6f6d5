//! Plumbing shared by the end-to-end benchmarks (`import`, `dispatch`):
//! the release binary, the backends and their throw-away databases, and the
//! `bulk-invite` processes they start on 127.0.0.1.

// Each bench uses only part of this module.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, RunQueryDsl};

pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
pub const API_KEY: &str = "bik_benchmark_key";
pub const MAX_UPLOAD_BYTES: u64 = 256 * 1024 * 1024;

// ---------------------------------------------------------------------------
// The server binary.

/// `BULK_INVITE_BIN`, or the release binary freshly built with cargo.
pub fn server_binary() -> Result<PathBuf> {
    if let Ok(bin) = std::env::var("BULK_INVITE_BIN") {
        let bin = PathBuf::from(bin);
        ensure!(
            bin.is_file(),
            "BULK_INVITE_BIN={} is not a file",
            bin.display()
        );
        return Ok(bin);
    }
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    println!("building the server: {cargo} build --release --bin bulk-invite");
    let status = Command::new(&cargo)
        .args([
            "build",
            "--release",
            "--bin",
            "bulk-invite",
            "--manifest-path",
        ])
        .arg(manifest_dir.join("Cargo.toml"))
        .status()
        .with_context(|| format!("cannot run {cargo}"))?;
    ensure!(status.success(), "cargo build --release failed ({status})");
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir.join("target"));
    let bin = target_dir.join("release").join("bulk-invite");
    ensure!(
        bin.is_file(),
        "no binary at {} after the build",
        bin.display()
    );
    Ok(bin)
}

// ---------------------------------------------------------------------------
// Backends and databases.

/// A database to run the server on.
pub enum Backend {
    Sqlite,
    /// An admin URL, used to create and drop one database per run.
    Postgres {
        admin_url: String,
    },
}

impl Backend {
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres { .. } => "postgres",
        }
    }
}

/// SQLite always; PostgreSQL when its admin URL answers.
pub fn backends() -> Vec<Backend> {
    let admin_url =
        std::env::var("BENCH_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
    // `BENCH_BACKENDS=postgres` (or `sqlite`) runs one of them only.
    let wanted = std::env::var("BENCH_BACKENDS").unwrap_or_else(|_| "sqlite postgres".into());
    let wanted: Vec<&str> = wanted.split([' ', ',']).collect();
    let mut backends = Vec::new();
    if wanted.contains(&"sqlite") {
        backends.push(Backend::Sqlite);
    }
    if !wanted.contains(&"postgres") {
        return backends;
    }
    match PgConnection::establish(&admin_url) {
        Ok(_) => backends.push(Backend::Postgres { admin_url }),
        Err(error) => println!(
            "note: skipping PostgreSQL, cannot connect to {admin_url}: {}",
            error.to_string().trim()
        ),
    }
    backends
}

/// A fresh database (dropped on drop) or SQLite file for one run.
pub enum Database {
    Sqlite {
        url: String,
    },
    Postgres {
        url: String,
        admin_url: String,
        name: String,
    },
}

impl Database {
    pub fn create(backend: &Backend, dir: &Path) -> Result<Database> {
        match backend {
            Backend::Sqlite => Ok(Database::Sqlite {
                url: format!("sqlite://{}", dir.join("bench.db").display()),
            }),
            Backend::Postgres { admin_url } => {
                let name = format!("bench_{}", uuid::Uuid::new_v4().simple());
                let mut conn = PgConnection::establish(admin_url)?;
                diesel::sql_query(format!("CREATE DATABASE {name}")).execute(&mut conn)?;
                Ok(Database::Postgres {
                    url: with_database(admin_url, &name),
                    admin_url: admin_url.clone(),
                    name,
                })
            }
        }
    }

    pub fn url(&self) -> &str {
        match self {
            Database::Sqlite { url } | Database::Postgres { url, .. } => url,
        }
    }

    /// Writes back what the last large write left in the log, as a quiet
    /// moment between two uploads would: on SQLite a truncating checkpoint
    /// of the write-ahead log, on PostgreSQL `VACUUM (ANALYZE)` and a
    /// `CHECKPOINT`. Without it the next measurement also pays for the
    /// previous one's write-back (the server's own checkpointer, or
    /// PostgreSQL's, runs during it) and, on PostgreSQL, for the autovacuum
    /// a table a million rows were added to gets within a minute (with 3M
    /// invitations it ran beside the next import for seconds).
    pub fn settle(&self) -> Result<()> {
        match self {
            Database::Sqlite { url } => {
                // A checkpoint that finds another one running (the server's
                // own, copying the last import's log) does not wait for it
                // whatever the busy timeout: it answers busy at once. So
                // ask until one has emptied the log.
                #[derive(diesel::QueryableByName)]
                struct Outcome {
                    #[diesel(sql_type = diesel::sql_types::Integer)]
                    busy: i32,
                }
                let path = url.trim_start_matches("sqlite://");
                let mut conn = diesel::SqliteConnection::establish(path)?;
                conn.batch_execute("PRAGMA busy_timeout = 60000")?;
                let deadline = Instant::now() + Duration::from_secs(300);
                while diesel::sql_query("PRAGMA wal_checkpoint(TRUNCATE)")
                    .get_result::<Outcome>(&mut conn)?
                    .busy
                    != 0
                {
                    ensure!(
                        Instant::now() < deadline,
                        "the log of {path} could not be emptied in 5 minutes"
                    );
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            Database::Postgres { url, .. } => {
                // Apart: VACUUM runs in no transaction, and a string of
                // several statements is one.
                let mut conn = PgConnection::establish(url)?;
                conn.batch_execute("VACUUM (ANALYZE)")?;
                conn.batch_execute("CHECKPOINT")?;
            }
        }
        Ok(())
    }
}

/// Writes every dirty page of the system to disk (`sync`) before a timed
/// phase, so that the phase neither waits behind the write-back of the one
/// before (an import leaves about 1.4 GB of its log and database to the
/// kernel) nor leaves its own for the next: on a 2-core machine with a
/// slow disk, SQLite's floor for one 1M import took 2.1 to 4.5 s from run
/// to run without it.
pub fn flush_to_disk() -> Result<()> {
    let status = std::process::Command::new("sync")
        .status()
        .context("cannot run sync")?;
    ensure!(status.success(), "sync failed: {status}");
    Ok(())
}

impl Drop for Database {
    fn drop(&mut self) {
        let Database::Postgres {
            admin_url, name, ..
        } = self
        else {
            return;
        };
        let dropped = PgConnection::establish(admin_url)
            .map_err(anyhow::Error::from)
            .and_then(|mut conn| {
                diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .map_err(anyhow::Error::from)
            });
        if let Err(error) = dropped {
            eprintln!("warning: could not drop database {name}: {error}");
        }
    }
}

/// The admin URL with its database (the path) replaced by `name`.
fn with_database(admin_url: &str, name: &str) -> String {
    let authority_start = admin_url.find("://").map_or(0, |i| i + 3);
    let (base, query) = match admin_url.find('?') {
        Some(q) => admin_url.split_at(q),
        None => (admin_url, ""),
    };
    let host_end = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    format!("{}/{name}{query}", &base[..host_end])
}

// ---------------------------------------------------------------------------
// Processes.

/// A `bulk-invite` child process writing stdout and stderr to a log file;
/// killed on drop if still running.
pub struct Process {
    child: Child,
    log: PathBuf,
}

impl Process {
    /// Starts `command` with its output going to `log`.
    pub fn spawn(mut command: Command, log: PathBuf) -> Result<Process> {
        let log_file = std::fs::File::create(&log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .with_context(|| {
                format!(
                    "cannot start {}",
                    Path::new(command.get_program()).display()
                )
            })?;
        Ok(Process { child, log })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it has not exited yet.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, then SIGKILL if it has not stopped within 10 s; `what` names
    /// it in the warning.
    pub fn stop(&mut self, what: &str) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("warning: the {what} ignored SIGTERM for 10 s; killing it");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The last lines of the log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        format!("{}\n{tail}", self.log.display())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `bulk-invite serve` on a free port of 127.0.0.1.
pub struct Server {
    process: Process,
    pub base: String,
}

impl Server {
    /// Starts the server on `database_url`, logging to `dir/server.log`.
    pub fn start(bin: &Path, database_url: &str, dir: &Path) -> Result<Server> {
        Server::start_with_env(bin, database_url, dir, &[])
    }

    /// Like [`Server::start`], without the dispatcher: every invitation an
    /// import writes stays queued, as the import left it.
    pub fn start_without_dispatcher(bin: &Path, database_url: &str, dir: &Path) -> Result<Server> {
        Server::start_with_env(bin, database_url, dir, &[("SERVE_DISPATCHER", "false")])
    }

    /// Like [`Server::start`], with extra environment variables.
    pub fn start_with_env(
        bin: &Path,
        database_url: &str,
        dir: &Path,
        env: &[(&str, &str)],
    ) -> Result<Server> {
        let port = free_port()?;
        let mut command = Command::new(bin);
        command
            .arg("serve")
            .env("DATABASE_URL", database_url)
            .env("BIND_ADDR", format!("127.0.0.1:{port}"))
            .env("MAX_UPLOAD_BYTES", MAX_UPLOAD_BYTES.to_string())
            .env("BULK_INVITE_BOOTSTRAP_API_KEY", API_KEY)
            // The benchmarks poll and upload with one key, faster than a
            // client is allowed to by default.
            .env("RATE_LIMIT_PER_MINUTE", "0")
            .env("MAX_CONCURRENT_IMPORTS_PER_ACCOUNT", "0")
            .envs(env.iter().copied());
        Ok(Server {
            process: Process::spawn(command, dir.join("server.log"))?,
            base: format!("http://127.0.0.1:{port}"),
        })
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Polls `GET /readyz` until it answers 200 (at most a minute).
    pub async fn wait_ready(&self, client: &reqwest::Client) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let url = format!("{}/readyz", self.base);
        while Instant::now() < deadline {
            if let Ok(response) = client.get(&url).send().await {
                if response.status() == 200 {
                    return Ok(());
                }
            }
            if !Path::new(&format!("/proc/{}", self.pid())).exists() {
                bail!("the server exited before it was ready");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("the server was not ready after 60 s")
    }

    /// SIGTERM, then SIGKILL if it has not stopped within 10 s.
    pub fn stop(&mut self) {
        self.process.stop("server");
    }

    /// The last lines of the server's log, for error messages.
    pub fn log_tail(&self) -> String {
        self.process.log_tail()
    }
}

/// A port that was free a moment ago.
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot bind a local port")?;
    Ok(listener.local_addr()?.port())
}

// ---------------------------------------------------------------------------
// The server's memory.

/// Memory of a process, from `/proc/<pid>/status`.
pub struct Memory {
    pub peak_mb: f64,
    pub rss_mb: f64,
}

impl Memory {
    pub fn read(pid: u32) -> Result<Memory> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .with_context(|| format!("cannot read /proc/{pid}/status"))?;
        let field = |name: &str| -> Result<f64> {
            let line = status
                .lines()
                .find(|line| line.starts_with(name))
                .with_context(|| format!("no {name} in /proc/{pid}/status"))?;
            let kb: f64 = line[name.len()..]
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .with_context(|| format!("cannot read {line:?}"))?;
            Ok(kb / 1024.0)
        };
        Ok(Memory {
            peak_mb: field("VmHWM:")?,
            rss_mb: field("VmRSS:")?,
        })
    }
}
