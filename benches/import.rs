//! End-to-end import benchmark: a real `bulk-invite serve` process, a real
//! database, a large generated file posted over HTTP on 127.0.0.1.
//!
//! Run it with
//!
//! ```text
//! cargo bench --bench import
//! BENCH_SIZES=20000 cargo bench --bench import           # a quick smoke run
//! BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench --bench import
//! BULK_INVITE_BIN=target/release/bulk-invite cargo bench --bench import  # skip the build
//! ```
//!
//! For every size in `BENCH_SIZES` (default `100000,1000000`) it generates a
//! deterministic file (seeded RNG: ~3% invalid entries, ~3% duplicates, some
//! differing in case, ~10% `Name Surname <addr>` entries, the rest plain
//! unique addresses), and for every backend (SQLite in a fresh temp file;
//! PostgreSQL in a fresh `bench_<uuid>` database when an admin URL is
//! reachable: `BENCH_POSTGRES_URL`, else `postgres://postgres@127.0.0.1:5432/postgres`)
//! it starts the release server and measures
//!
//! - the wall time from sending `POST /imports` (`text/plain`) to the 201,
//! - the server's peak resident memory (`VmHWM` in `/proc/<pid>/status`),
//! - the median time of 20 report pages of 100 entries at the start of the
//!   report and at 90% of it (keyset paging should make both cost the same).
//!
//! It prints one row per (backend, size) and checks the targets: 1,000,000
//! entries in ≤ 6 s on SQLite and ≤ 10 s on PostgreSQL, peak memory below
//! 250 MB, a deep page about as fast as the first. A missed target is only
//! reported; the exit status is non-zero only when something is broken (the
//! server does not start, an answer is not the expected status, the counts
//! are wrong).

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use diesel::{Connection, PgConnection, RunQueryDsl};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const DEFAULT_SIZES: &[usize] = &[100_000, 1_000_000];
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const API_KEY: &str = "bik_benchmark_key";
const MAX_UPLOAD_BYTES: u64 = 256 * 1024 * 1024;
const PAGE_LIMIT: usize = 100;
const PAGE_SAMPLES: usize = 20;
const SEED: u64 = 0x5EED_1417;

const TARGET_SQLITE_SECS: f64 = 6.0;
const TARGET_POSTGRES_SECS: f64 = 10.0;
const TARGET_PEAK_MB: f64 = 250.0;
const TARGET_ENTRIES: usize = 1_000_000;

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
    let sizes = sizes()?;
    let bin = server_binary()?;
    println!("server binary: {}", bin.display());
    let backends = backends();
    let runtime = tokio::runtime::Runtime::new().context("cannot start the tokio runtime")?;
    let mut rows = Vec::new();
    for &size in &sizes {
        let file = ImportFile::generate(size);
        let dir = tempfile::tempdir().context("cannot make a temp dir")?;
        let path = dir.path().join(format!("import-{size}.txt"));
        std::fs::write(&path, &file.bytes).context("cannot write the import file")?;
        println!(
            "\ngenerated {size} entries: {:.1} MB at {} (expect {} invalid, {} duplicate)",
            file.bytes.len() as f64 / 1e6,
            path.display(),
            file.expected.invalid,
            file.expected.duplicate,
        );
        for backend in &backends {
            println!("running {} with {size} entries...", backend.name());
            let row = runtime
                .block_on(run_one(&bin, backend, &file))
                .with_context(|| format!("{} with {size} entries", backend.name()))?;
            row.print_progress();
            rows.push(row);
        }
    }
    print_table(&rows);
    print_targets(&rows);
    Ok(())
}

// ---------------------------------------------------------------------------
// Setup: sizes, the server binary, the backends.

/// `BENCH_SIZES=100000,1000000`, or the defaults.
fn sizes() -> Result<Vec<usize>> {
    let Ok(text) = std::env::var("BENCH_SIZES") else {
        return Ok(DEFAULT_SIZES.to_vec());
    };
    let sizes = text
        .split(',')
        .map(|s| s.trim().replace('_', ""))
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .with_context(|| format!("BENCH_SIZES: bad size {s:?}"))
        })
        .collect::<Result<Vec<_>>>()?;
    ensure!(
        !sizes.is_empty() && sizes.iter().all(|&n| n >= 10),
        "BENCH_SIZES needs sizes of at least 10"
    );
    Ok(sizes)
}

/// `BULK_INVITE_BIN`, or the release binary freshly built with cargo.
fn server_binary() -> Result<PathBuf> {
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

/// A database to run the server on.
enum Backend {
    Sqlite,
    /// An admin URL, used to create and drop one database per run.
    Postgres {
        admin_url: String,
    },
}

impl Backend {
    fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres { .. } => "postgres",
        }
    }
}

/// SQLite always; PostgreSQL when its admin URL answers.
fn backends() -> Vec<Backend> {
    let admin_url =
        std::env::var("BENCH_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
    let mut backends = vec![Backend::Sqlite];
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
enum Database {
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
    fn create(backend: &Backend, dir: &Path) -> Result<Database> {
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

    fn url(&self) -> &str {
        match self {
            Database::Sqlite { url } | Database::Postgres { url, .. } => url,
        }
    }
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
// The import file.

/// A generated file and the counts the service should report for it.
struct ImportFile {
    entries: usize,
    bytes: bytes::Bytes,
    expected: Expected,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Expected {
    invalid: u64,
    duplicate: u64,
    queued: u64,
}

const FIRST_NAMES: &[&str] = &["Ann", "Bob", "Carol", "Dan", "Eve", "Femi", "Gita", "Hugo"];
const LAST_NAMES: &[&str] = &["Lee", "Okafor", "Smith", "Tanaka", "Novak", "Silva", "Berg"];

impl ImportFile {
    /// `entries` lines, the same for every run.
    fn generate(entries: usize) -> ImportFile {
        let mut rng = StdRng::seed_from_u64(SEED);
        let mut text = String::with_capacity(entries * 36);
        let mut expected = Expected::default();
        let mut unique = 0u64;
        for line in 0..entries as u64 {
            let roll = rng.gen_range(0..100);
            if roll < 3 {
                text.push_str(&invalid_address(&mut rng, line));
                expected.invalid += 1;
            } else if roll < 6 && unique > 0 {
                let earlier = address(rng.gen_range(0..unique));
                let upper = rng.gen_bool(0.5);
                text.push_str(&if upper {
                    earlier.to_ascii_uppercase()
                } else {
                    earlier
                });
                expected.duplicate += 1;
            } else if roll < 16 {
                let first = FIRST_NAMES[rng.gen_range(0..FIRST_NAMES.len())];
                let last = LAST_NAMES[rng.gen_range(0..LAST_NAMES.len())];
                text.push_str(&format!("{first} {last} <{}>", address(unique)));
                unique += 1;
            } else {
                text.push_str(&address(unique));
                unique += 1;
            }
            text.push('\n');
        }
        expected.queued = unique;
        ImportFile {
            entries,
            bytes: bytes::Bytes::from(text.into_bytes()),
            expected,
        }
    }
}

/// The `n`th unique address.
fn address(n: u64) -> String {
    format!("user{n:06}.x@example{}.com", n % 97)
}

/// An address that is invalid in one of a few ways, unique per `line` (and
/// without whitespace, so it stays one entry).
fn invalid_address(rng: &mut StdRng, line: u64) -> String {
    match rng.gen_range(0..4) {
        0 => format!("bad{line:07}.x.example.com"),   // missing @
        1 => format!("bad{line:07}.x@example_1.com"), // bad domain
        2 => format!("bad{line:07}..x@example.com"),  // double dot
        _ => format!("bad{line:07}.x@localhost"),     // single-label domain
    }
}

// ---------------------------------------------------------------------------
// One run: server, import, memory, report pages.

/// What one (backend, size) run measured.
struct Row {
    backend: &'static str,
    entries: usize,
    secs_to_201: f64,
    peak_rss_mb: f64,
    rss_mb: f64,
    first_page_ms: f64,
    deep_page_ms: f64,
}

impl Row {
    fn entries_per_sec(&self) -> f64 {
        self.entries as f64 / self.secs_to_201
    }

    fn print_progress(&self) {
        println!(
            "  201 after {:.2} s ({:.0} entries/s); VmHWM {:.1} MB, VmRSS {:.1} MB; pages: first {:.2} ms, deep {:.2} ms",
            self.secs_to_201,
            self.entries_per_sec(),
            self.peak_rss_mb,
            self.rss_mb,
            self.first_page_ms,
            self.deep_page_ms
        );
    }
}

async fn run_one(bin: &Path, backend: &Backend, file: &ImportFile) -> Result<Row> {
    let dir = tempfile::tempdir().context("cannot make a temp dir")?;
    let database = Database::create(backend, dir.path()).context("cannot create the database")?;
    let mut server = Server::start(bin, database.url(), dir.path())?;
    let result = measure(&server, file).await;
    server.stop();
    result
        .map(|m| Row {
            backend: backend.name(),
            entries: file.entries,
            secs_to_201: m.secs_to_201,
            peak_rss_mb: m.memory.peak_mb,
            rss_mb: m.memory.rss_mb,
            first_page_ms: m.first_page_ms,
            deep_page_ms: m.deep_page_ms,
        })
        .with_context(|| format!("server log: {}", server.log_tail()))
}

struct Measurement {
    secs_to_201: f64,
    memory: Memory,
    first_page_ms: f64,
    deep_page_ms: f64,
}

async fn measure(server: &Server, file: &ImportFile) -> Result<Measurement> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()?;
    server.wait_ready(&client).await?;
    let (secs_to_201, import) = post_import(&client, &server.base, file).await?;
    check_counts(&import, file)?;
    let memory = Memory::read(server.pid())?;
    let id = import["id"].as_str().context("the import has no id")?;
    let deep_position = file.entries * 9 / 10;
    let first_page_ms = time_page(&client, &server.base, id, 0).await?;
    let deep_page_ms = time_page(&client, &server.base, id, deep_position).await?;
    Ok(Measurement {
        secs_to_201,
        memory,
        first_page_ms,
        deep_page_ms,
    })
}

/// Posts the file as `text/plain`; returns the seconds until the 201 and its body.
async fn post_import(
    client: &reqwest::Client,
    base: &str,
    file: &ImportFile,
) -> Result<(f64, serde_json::Value)> {
    let started = Instant::now();
    let response = client
        .post(format!("{base}/imports?filename=bench.txt"))
        .bearer_auth(API_KEY)
        .header("Content-Type", "text/plain")
        .body(file.bytes.clone())
        .send()
        .await
        .context("POST /imports failed")?;
    let secs = started.elapsed().as_secs_f64();
    let status = response.status();
    let body = response
        .text()
        .await
        .context("cannot read the import answer")?;
    ensure!(status == 201, "POST /imports answered {status}: {body}");
    let json = serde_json::from_str(&body).context("the import answer is not JSON")?;
    Ok((secs, json))
}

/// The reported counts must match what the generator wrote.
fn check_counts(import: &serde_json::Value, file: &ImportFile) -> Result<()> {
    let counts = &import["counts"];
    let count = |name: &str| counts[name].as_u64();
    let want = file.expected;
    let checks = [
        ("entries", file.entries as u64),
        ("invalid", want.invalid),
        ("duplicate", want.duplicate),
        ("existing_user", 0),
        ("already_invited", 0),
        ("queued", want.queued),
    ];
    let wrong: Vec<String> = checks
        .iter()
        .filter(|(name, expected)| count(name) != Some(*expected))
        .map(|(name, expected)| format!("{name}: got {:?}, expected {expected}", count(name)))
        .collect();
    ensure!(
        wrong.is_empty(),
        "wrong counts ({}) in {counts}",
        wrong.join("; ")
    );
    Ok(())
}

/// The median of [`PAGE_SAMPLES`] fetches of the page after `position`, in ms.
async fn time_page(client: &reqwest::Client, base: &str, id: &str, position: usize) -> Result<f64> {
    let cursor = URL_SAFE_NO_PAD.encode(format!("p:{position}"));
    let url = format!("{base}/imports/{id}/report?limit={PAGE_LIMIT}&cursor={cursor}");
    let mut samples = Vec::with_capacity(PAGE_SAMPLES);
    for _ in 0..PAGE_SAMPLES {
        let started = Instant::now();
        let response = client.get(&url).bearer_auth(API_KEY).send().await?;
        let status = response.status();
        let body = response.bytes().await?;
        samples.push(started.elapsed().as_secs_f64() * 1e3);
        ensure!(
            status == 200,
            "GET report at {position} answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
        check_page(&body, position)?;
    }
    Ok(median(&mut samples))
}

/// A page must hold [`PAGE_LIMIT`] entries starting right after `position`.
fn check_page(body: &[u8], position: usize) -> Result<()> {
    let page: serde_json::Value = serde_json::from_slice(body).context("the page is not JSON")?;
    let entries = page["entries"]
        .as_array()
        .context("the page has no entries")?;
    ensure!(
        entries.len() == PAGE_LIMIT,
        "the page after {position} has {} entries, not {PAGE_LIMIT}",
        entries.len()
    );
    let first = entries[0]["position"].as_u64();
    ensure!(
        first == Some(position as u64 + 1),
        "the page after {position} starts at position {first:?}"
    );
    Ok(())
}

fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(f64::total_cmp);
    let mid = samples.len() / 2;
    if samples.len() % 2 == 0 {
        (samples[mid - 1] + samples[mid]) / 2.0
    } else {
        samples[mid]
    }
}

// ---------------------------------------------------------------------------
// The server process.

struct Server {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Server {
    fn start(bin: &Path, database_url: &str, dir: &Path) -> Result<Server> {
        let port = free_port()?;
        let log = dir.join("server.log");
        let log_file = std::fs::File::create(&log).context("cannot create the server log")?;
        let child = Command::new(bin)
            .arg("serve")
            .env("DATABASE_URL", database_url)
            .env("BIND_ADDR", format!("127.0.0.1:{port}"))
            .env("MAX_UPLOAD_BYTES", MAX_UPLOAD_BYTES.to_string())
            .env("BULK_INVITE_BOOTSTRAP_API_KEY", API_KEY)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        Ok(Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Polls `GET /readyz` until it answers 200 (at most a minute).
    async fn wait_ready(&self, client: &reqwest::Client) -> Result<()> {
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
    fn stop(&mut self) {
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
        eprintln!("warning: the server ignored SIGTERM for 10 s; killing it");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The last lines of the server's log, for error messages.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        format!("{}\n{tail}", self.log.display())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A port that was free a moment ago.
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot bind a local port")?;
    Ok(listener.local_addr()?.port())
}

/// Memory of a process, from `/proc/<pid>/status`.
struct Memory {
    peak_mb: f64,
    rss_mb: f64,
}

impl Memory {
    fn read(pid: u32) -> Result<Memory> {
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

// ---------------------------------------------------------------------------
// Output.

fn print_table(rows: &[Row]) {
    println!();
    println!(
        "{:<9} {:>9} {:>11} {:>15} {:>11} {:>13} {:>12}",
        "backend",
        "entries",
        "secs_to_201",
        "entries_per_sec",
        "peak_rss_MB",
        "first_page_ms",
        "deep_page_ms"
    );
    for row in rows {
        println!(
            "{:<9} {:>9} {:>11.2} {:>15.0} {:>11.1} {:>13.2} {:>12.2}",
            row.backend,
            row.entries,
            row.secs_to_201,
            row.entries_per_sec(),
            row.peak_rss_mb,
            row.first_page_ms,
            row.deep_page_ms
        );
    }
    let _ = std::io::stdout().flush();
}

/// "About as fast": at most twice the first page, or 5 ms slower.
fn deep_page_ok(row: &Row) -> bool {
    row.deep_page_ms <= (row.first_page_ms * 2.0).max(row.first_page_ms + 5.0)
}

fn print_targets(rows: &[Row]) {
    println!("\ntargets:");
    for (backend, limit) in [
        ("sqlite", TARGET_SQLITE_SECS),
        ("postgres", TARGET_POSTGRES_SECS),
    ] {
        let label = format!("{TARGET_ENTRIES} entries on {backend} <= {limit} s");
        match rows
            .iter()
            .find(|r| r.backend == backend && r.entries == TARGET_ENTRIES)
        {
            Some(row) => verdict(
                &label,
                row.secs_to_201 <= limit,
                format!("{:.2} s", row.secs_to_201),
            ),
            None => println!("  {label}: not measured"),
        }
    }
    let peak = rows.iter().map(|r| r.peak_rss_mb).fold(0.0, f64::max);
    verdict(
        &format!("peak memory < {TARGET_PEAK_MB} MB"),
        peak < TARGET_PEAK_MB,
        format!("max {peak:.1} MB"),
    );
    let slow: Vec<String> = rows
        .iter()
        .filter(|r| !deep_page_ok(r))
        .map(|r| {
            format!(
                "{} {}: {:.2} vs {:.2} ms",
                r.backend, r.entries, r.deep_page_ms, r.first_page_ms
            )
        })
        .collect();
    verdict(
        "deep page ~ first page (<= 2x or +5 ms)",
        slow.is_empty(),
        if slow.is_empty() {
            "all runs".to_owned()
        } else {
            slow.join(", ")
        },
    );
}

fn verdict(label: &str, met: bool, detail: String) {
    let word = if met { "MET" } else { "MISSED" };
    println!("  {word:<6} {label} ({detail})");
}
