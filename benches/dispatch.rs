//! End-to-end dispatch benchmark: invitations queued by a real
//! `bulk-invite serve`, sent by real `bulk-invite worker` processes through
//! the `postmark` adapter to a fake Postmark in this process that answers at
//! once, all on 127.0.0.1.
//!
//! Run it with
//!
//! ```text
//! cargo bench --bench dispatch
//! BENCH_INVITATIONS=20000 cargo bench --bench dispatch   # a quick smoke run
//! BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench --bench dispatch
//! BULK_INVITE_BIN=target/release/bulk-invite cargo bench --bench dispatch  # skip the build
//! ```
//!
//! For every backend (SQLite in a fresh temp file; PostgreSQL in a fresh
//! `bench_<uuid>` database when an admin URL is reachable) and every worker
//! count (1 and 4) it imports `BENCH_INVITATIONS` (default 100,000) unique
//! addresses through a server whose dispatcher is off, stops the server,
//! starts the workers and measures
//!
//! - the wall time from spawning the workers until the import counts every
//!   invitation `sent` (polled every 100 ms), as invitations per second,
//! - the workers' CPU time (utime + stime from `/proc/<pid>/stat`, read
//!   before they are stopped) per 1,000 invitations,
//! - invitations the fake received more than once,
//! - on SQLite, the write-ahead log file's size when the workers start
//!   (what the import's one transaction left), the largest it got while
//!   draining once a checkpoint first shrank it (sampled at each poll; the
//!   overall peak if it never shrank), and the database file's size at the
//!   end: the log must stay under 256 MB or twice the database, whichever
//!   is larger.
//!
//! It checks the target of at least 10,000 invitations per second with one
//! worker on SQLite; a missed target is only reported. The exit status is
//! non-zero only when something is broken: a process does not start, the
//! import is refused or miscounted, not every invitation is sent within 10
//! minutes (or one fails, or never reaches the fake), or one worker alone
//! sends an invitation twice.

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, ExitCode};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use bulk_invite::db::schema::{imports, invitations};
use bulk_invite::db::{DbConnection, DbUrl};
use common::{backends, server_binary, Backend, Database, Process, Server, API_KEY};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const DEFAULT_INVITATIONS: usize = 100_000;
const WORKER_COUNTS: &[usize] = &[1, 4];
const POSTMARK_TOKEN: &str = "bench";
const POLL_EVERY: Duration = Duration::from_millis(100);
const SEND_TIMEOUT: Duration = Duration::from_secs(600);

const TARGET_PER_SEC: f64 = 10_000.0;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("\nbenchmark broken: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let count = invitation_count()?;
    let bin = server_binary()?;
    println!("server binary: {}", bin.display());
    println!("load average at start: {}", load_average());
    let backends = backends();
    let ticks = clock_ticks();
    let file = import_file(count);
    let runtime = tokio::runtime::Runtime::new().context("cannot start the tokio runtime")?;
    let mut rows = Vec::new();
    for backend in &backends {
        for &workers in WORKER_COUNTS {
            println!(
                "\nrunning {} with {workers} worker(s), {count} invitations...",
                backend.name()
            );
            let row = runtime
                .block_on(run_one(&bin, backend, &file, count, workers, ticks))
                .with_context(|| format!("{} with {workers} worker(s)", backend.name()))?;
            row.print_progress();
            rows.push(row);
        }
    }
    print_table(&rows);
    print_targets(&rows);
    let doubled: Vec<&Row> = rows
        .iter()
        .filter(|r| r.workers == 1 && r.duplicates > 0)
        .collect();
    if let Some(row) = doubled.first() {
        bail!(
            "one worker on {} sent {} invitations more than once",
            row.backend,
            row.duplicates
        );
    }
    Ok(())
}

/// `BENCH_INVITATIONS`, or the default.
fn invitation_count() -> Result<usize> {
    let Ok(text) = std::env::var("BENCH_INVITATIONS") else {
        return Ok(DEFAULT_INVITATIONS);
    };
    let count = text
        .trim()
        .replace('_', "")
        .parse::<usize>()
        .with_context(|| format!("BENCH_INVITATIONS: bad number {text:?}"))?;
    ensure!(count >= 1, "BENCH_INVITATIONS must be at least 1");
    Ok(count)
}

/// `count` unique plain addresses, one a line.
fn import_file(count: usize) -> bytes::Bytes {
    let mut text = String::with_capacity(count * 32);
    for n in 0..count {
        text.push_str(&format!("user{n:06}.x@example{}.com\n", n % 97));
    }
    bytes::Bytes::from(text.into_bytes())
}

/// Clock ticks per second, the unit of `/proc/<pid>/stat` times.
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok()?.trim().parse().ok())
        .unwrap_or(100.0)
}

/// The first three fields of `/proc/loadavg`.
fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

// ---------------------------------------------------------------------------
// One run: import, workers, the fake Postmark.

/// What one (backend, workers) run measured.
struct Row {
    backend: &'static str,
    workers: usize,
    invitations: usize,
    secs: f64,
    cpu_secs: f64,
    duplicates: u64,
    requests: u64,
    /// SQLite: the WAL file's sizes and the database file's final size.
    wal: Option<(Wal, u64)>,
}

impl Row {
    fn per_sec(&self) -> f64 {
        self.invitations as f64 / self.secs
    }

    fn cpu_ms_per_1000(&self) -> f64 {
        self.cpu_secs * 1e3 / (self.invitations as f64 / 1e3)
    }

    fn print_progress(&self) {
        println!(
            "  all sent after {:.2} s ({:.0} invitations/s); workers' CPU {:.2} s ({:.1} ms per 1,000); \
             {} batch requests, {} duplicates",
            self.secs,
            self.per_sec(),
            self.cpu_secs,
            self.cpu_ms_per_1000(),
            self.requests,
            self.duplicates
        );
        if let Some((wal, db)) = &self.wal {
            println!(
                "  WAL {:.1} MB when the workers started, peak {:.1} MB while draining, \
                 for a {:.1} MB database",
                mb(wal.start.unwrap_or(0)),
                mb(wal.peak),
                mb(*db)
            );
        }
    }
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

async fn run_one(
    bin: &Path,
    backend: &Backend,
    file: &bytes::Bytes,
    count: usize,
    workers: usize,
    ticks: f64,
) -> Result<Row> {
    let dir = tempfile::tempdir().context("cannot make a temp dir")?;
    let database = Database::create(backend, dir.path()).context("cannot create the database")?;
    let import_id = import(bin, database.url(), dir.path(), file, count).await?;
    let fake = FakePostmark::start().await;
    let mut conn = connect(database.url())?;
    let db_file = match &database {
        Database::Sqlite { url } => Some(url.trim_start_matches("sqlite://").to_owned()),
        Database::Postgres { .. } => None,
    };
    let mut wal = db_file.as_ref().map(|file| Wal {
        file: format!("{file}-wal"),
        ..Wal::default()
    });

    let started = Instant::now();
    let mut processes = (0..workers)
        .map(|i| start_worker(bin, database.url(), &fake.uri(), dir.path(), i))
        .collect::<Result<Vec<_>>>()?;
    let sent = wait_until_sent(
        &mut conn,
        &import_id,
        count,
        &mut processes,
        started,
        wal.as_mut(),
    )
    .await;
    let cpu_secs = processes
        .iter()
        .map(|p| cpu_secs(p.pid(), ticks))
        .sum::<Result<f64>>();
    for process in &mut processes {
        process.stop("worker");
    }
    let logs = || {
        processes
            .iter()
            .map(Process::log_tail)
            .collect::<Vec<_>>()
            .join("\n")
    };
    let secs = sent.with_context(|| format!("worker logs: {}", logs()))?;
    let cpu_secs = cpu_secs?;

    let sent_rows: i64 = invitations::table
        .filter(invitations::status.eq("sent"))
        .count()
        .get_result(&mut conn)?;
    ensure!(
        sent_rows == count as i64,
        "{sent_rows} invitations are sent, not {count}"
    );
    let tally = fake.tally();
    ensure!(
        tally.malformed == 0,
        "{} malformed batches",
        tally.malformed
    );
    ensure!(
        tally.ids.len() == count,
        "the fake received {} distinct invitations, not {count}",
        tally.ids.len()
    );
    Ok(Row {
        backend: backend.name(),
        workers,
        invitations: count,
        secs,
        cpu_secs,
        duplicates: tally.duplicates,
        requests: tally.requests,
        wal: wal.zip(db_file).map(|(wal, db)| (wal, file_size(&db))),
    })
}

/// The SQLite write-ahead log file, sampled while the backlog drains.
#[derive(Debug, Default)]
struct Wal {
    file: String,
    /// Its size at the first sample.
    start: Option<u64>,
    /// The last sample.
    last: u64,
    /// Whether it has shrunk since the first sample (a checkpoint emptied it).
    shrunk: bool,
    /// The largest sample once it shrank (or overall, while it never has).
    peak: u64,
}

impl Wal {
    fn sample(&mut self) {
        let size = file_size(&self.file);
        if self.start.is_none() {
            self.start = Some(size);
        } else if size < self.last && !self.shrunk {
            self.shrunk = true;
            self.peak = 0;
        }
        self.last = size;
        self.peak = self.peak.max(size);
    }
}

fn file_size(path: &str) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// Queues `count` invitations through a server whose dispatcher is off,
/// then stops it; returns the import's id.
async fn import(
    bin: &Path,
    database_url: &str,
    dir: &Path,
    file: &bytes::Bytes,
    count: usize,
) -> Result<String> {
    let env = [("SERVE_DISPATCHER", "false"), ("RUST_LOG", "warn")];
    let mut server = Server::start_with_env(bin, database_url, dir, &env)?;
    let result = post_import(&server, file, count).await;
    server.stop();
    result.with_context(|| format!("server log: {}", server.log_tail()))
}

async fn post_import(server: &Server, file: &bytes::Bytes, count: usize) -> Result<String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()?;
    server.wait_ready(&client).await?;
    let started = Instant::now();
    let response = client
        .post(format!("{}/imports?filename=bench.txt", server.base))
        .bearer_auth(API_KEY)
        .header("Content-Type", "text/plain")
        .body(file.clone())
        .send()
        .await
        .context("POST /imports failed")?;
    let status = response.status();
    let body = response.text().await.context("cannot read the answer")?;
    ensure!(status == 201, "POST /imports answered {status}: {body}");
    let import: serde_json::Value = serde_json::from_str(&body).context("not JSON")?;
    let queued = import["counts"]["queued"].as_u64();
    ensure!(
        queued == Some(count as u64),
        "queued {queued:?}, not {count}: {body}"
    );
    println!(
        "  queued {count} in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    Ok(import["id"].as_str().context("no import id")?.to_owned())
}

/// `bulk-invite worker` number `index`, sending through the fake at `postmark_url`.
fn start_worker(
    bin: &Path,
    database_url: &str,
    postmark_url: &str,
    dir: &Path,
    index: usize,
) -> Result<Process> {
    let mut command = Command::new(bin);
    command
        .arg("worker")
        .env("DATABASE_URL", database_url)
        .env("EMAIL_PROVIDER", "postmark")
        .env("POSTMARK_BASE_URL", postmark_url)
        .env("POSTMARK_SERVER_TOKEN", POSTMARK_TOKEN)
        .env("BULK_INVITE_TOKEN_SECRET", "bench")
        .env("DISPATCH_POLL_MS", "20")
        .env("RUST_LOG", "warn");
    Process::spawn(command, dir.join(format!("worker-{index}.log")))
}

/// One connection (not a pool: the workers' pools are load enough).
fn connect(url: &str) -> Result<DbConnection> {
    let conn = match DbUrl::parse(url) {
        DbUrl::Postgres(url) => DbConnection::Pg(PgConnection::establish(&url)?),
        DbUrl::Sqlite(path) => DbConnection::Sqlite(SqliteConnection::establish(&path)?),
    };
    Ok(conn)
}

/// Polls the import's counts until `count` are sent; returns the seconds
/// since `started`.
async fn wait_until_sent(
    conn: &mut DbConnection,
    import_id: &str,
    count: usize,
    workers: &mut [Process],
    started: Instant,
    mut wal: Option<&mut Wal>,
) -> Result<f64> {
    loop {
        if let Some(wal) = wal.as_deref_mut() {
            wal.sample();
        }
        let (sent, failed): (i64, i64) = imports::table
            .find(import_id)
            .select((imports::sent, imports::failed))
            .first(conn)?;
        if sent >= count as i64 {
            return Ok(started.elapsed().as_secs_f64());
        }
        ensure!(failed == 0, "{failed} invitations failed");
        if let Some(worker) = workers.iter_mut().position(|w| !w.is_running()) {
            bail!("worker {} exited", workers[worker].pid());
        }
        ensure!(
            started.elapsed() < SEND_TIMEOUT,
            "only {sent} of {count} sent after {} s",
            SEND_TIMEOUT.as_secs()
        );
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// User plus system CPU time of a running process, in seconds.
fn cpu_secs(pid: u32, ticks: f64) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("cannot read /proc/{pid}/stat"))?;
    // Fields after the `(comm)`, which may hold spaces, start at field 3.
    let after_comm = stat.rsplit_once(')').context("bad stat")?.1;
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    let field = |n: usize| -> Result<f64> {
        let text = fields.get(n - 3).context("short stat")?;
        Ok(text.parse::<f64>()?)
    };
    Ok((field(14)? + field(15)?) / ticks)
}

// ---------------------------------------------------------------------------
// The fake Postmark.

/// What the fake received.
#[derive(Default)]
struct Tally {
    requests: u64,
    ids: HashSet<String>,
    duplicates: u64,
    malformed: u64,
}

/// A wiremock server answering `POST /email/batch` with success for every
/// message at once, counting the invitations it sees.
struct FakePostmark {
    server: MockServer,
    tally: Arc<Mutex<Tally>>,
}

impl FakePostmark {
    async fn start() -> FakePostmark {
        // Recording would keep every request body (hundreds of MB).
        let server = MockServer::builder()
            .disable_request_recording()
            .start()
            .await;
        let tally = Arc::new(Mutex::new(Tally::default()));
        Mock::given(method("POST"))
            .and(path("/email/batch"))
            .and(header("X-Postmark-Server-Token", POSTMARK_TOKEN))
            .respond_with(PostmarkBatch {
                tally: tally.clone(),
            })
            .mount(&server)
            .await;
        FakePostmark { server, tally }
    }

    fn uri(&self) -> String {
        self.server.uri()
    }

    fn tally(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.tally.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct PostmarkBatch {
    tally: Arc<Mutex<Tally>>,
}

/// The part of a message the fake reads.
#[derive(Deserialize)]
struct Email {
    #[serde(rename = "To")]
    to: String,
    #[serde(rename = "Metadata")]
    metadata: Metadata,
}

#[derive(Deserialize)]
struct Metadata {
    invitation_id: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Answer<'a> {
    error_code: i32,
    message: &'static str,
    #[serde(rename = "MessageID")]
    message_id: String,
    submitted_at: &'static str,
    to: &'a str,
}

impl Respond for PostmarkBatch {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut tally = self.tally.lock().unwrap_or_else(PoisonError::into_inner);
        tally.requests += 1;
        let Ok(emails) = serde_json::from_slice::<Vec<Email>>(&request.body) else {
            tally.malformed += 1;
            return ResponseTemplate::new(500);
        };
        let mut answers = Vec::with_capacity(emails.len());
        for email in &emails {
            let id = &email.metadata.invitation_id;
            if !tally.ids.insert(id.clone()) {
                tally.duplicates += 1;
            }
            answers.push(Answer {
                error_code: 0,
                message: "OK",
                message_id: format!("pm-{id}"),
                submitted_at: "2026-11-26T01:00:00Z",
                to: &email.to,
            });
        }
        ResponseTemplate::new(200).set_body_json(answers)
    }
}

// ---------------------------------------------------------------------------
// Output.

fn print_table(rows: &[Row]) {
    println!();
    println!(
        "{:<9} {:>7} {:>11} {:>7} {:>11} {:>15} {:>10} {:>11} {:>9}",
        "backend",
        "workers",
        "invitations",
        "secs",
        "inv_per_sec",
        "cpu_ms_per_1000",
        "duplicates",
        "wal_peak_mb",
        "db_mb"
    );
    for row in rows {
        let (wal, db) = row
            .wal
            .as_ref()
            .map_or(("-".into(), "-".into()), |(wal, db)| {
                (format!("{:.1}", mb(wal.peak)), format!("{:.1}", mb(*db)))
            });
        println!(
            "{:<9} {:>7} {:>11} {:>7.2} {:>11.0} {:>15.1} {:>10} {:>11} {:>9}",
            row.backend,
            row.workers,
            row.invitations,
            row.secs,
            row.per_sec(),
            row.cpu_ms_per_1000(),
            row.duplicates,
            wal,
            db
        );
    }
}

fn print_targets(rows: &[Row]) {
    println!("\ntargets:");
    let label = ">= 10,000 invitations/s, one worker, SQLite";
    match rows
        .iter()
        .find(|r| r.backend == "sqlite" && r.workers == 1)
    {
        Some(row) => {
            let word = if row.per_sec() >= TARGET_PER_SEC {
                "MET"
            } else {
                "MISSED"
            };
            println!("  {word:<6} {label} ({:.0}/s)", row.per_sec());
        }
        None => println!("  {label}: not measured"),
    }
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "note: {cores} cores shared by the fake Postmark (this process), the workers and the database; \
         load average at the end: {}",
        load_average()
    );
}
