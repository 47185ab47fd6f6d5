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
//! BENCH_GROWTH=1000000 cargo bench --bench import    # account size vs import time and memory
//! BENCH_RUNS=5 BENCH_SIZES=1000000 cargo bench --bench import  # each import five times
//! ```
//!
//! `BENCH_GROWTH` runs another scenario instead, described in
//! `import_growth`: small requests in an empty account and again after
//! three large imports, and the large imports' times and memory.
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
//!   report and at 90% of it (keyset paging should make both cost the same),
//! - the database's own bulk path for the very same rows into a fresh
//!   database of the same schema (`import_floor`: SQLite's `INSERT ...
//!   SELECT` from the import's file attached, PostgreSQL's `psql \copy`),
//!   and the import's time as a multiple of it; on SQLite also that copy
//!   row by row (`row_by_row_secs`, `rows_ratio`: without SQLite's
//!   transfer optimization, which copies records undecoded).
//!
//! The server runs without its dispatcher, so the rows the floor copies
//! are exactly those the import wrote (all invitations queued).
//!
//! `BENCH_RUNS` (default 1) repeats each (backend, size) that many times,
//! each run with its own server, database and floor: on a machine whose
//! speed swings from one minute to the next a single run's ratio says
//! little. The targets are then checked on the median run (by time, and
//! by ratio for the ratio targets), and the peak memory on the largest.
//!
//! It prints the machine's core count, one row per run and checks the
//! targets: 1,000,000 entries in ≤ 6 s on SQLite and ≤ 10 s on
//! PostgreSQL; at most 1.6× SQLite's own bulk path and 1.0× PostgreSQL's;
//! peak memory below 250 MB, a deep page about as fast as the first. A
//! missed target is only
//! reported; the exit status is non-zero only when something is broken (the
//! server does not start, an answer is not the expected status, the counts
//! are wrong).

mod common;
mod import_floor;
mod import_growth;

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use common::{backends, flush_to_disk, server_binary, Backend, Database, Memory, Server, API_KEY};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

const DEFAULT_SIZES: &[usize] = &[100_000, 1_000_000];
const PAGE_LIMIT: usize = 100;
const PAGE_SAMPLES: usize = 20;
const SEED: u64 = 0x5EED_1417;

const TARGET_SQLITE_SECS: f64 = 6.0;
const TARGET_POSTGRES_SECS: f64 = 10.0;
const TARGET_PEAK_MB: f64 = 250.0;
const TARGET_ENTRIES: usize = 1_000_000;
/// The import's time as a multiple of the database's own bulk path, at most.
const TARGET_SQLITE_FLOOR_RATIO: f64 = 1.6;
const TARGET_POSTGRES_FLOOR_RATIO: f64 = 1.0;

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
    let growth = growth_size()?;
    let sizes = sizes()?;
    let bin = server_binary()?;
    println!("server binary: {}", bin.display());
    println!(
        "cores: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let backends = backends();
    if let Some(size) = growth {
        return import_growth::run(&bin, &backends, size);
    }
    let repeats = runs()?;
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
            for run in 1..=repeats {
                let of = if repeats > 1 {
                    format!(" (run {run} of {repeats})")
                } else {
                    String::new()
                };
                println!("running {} with {size} entries{of}...", backend.name());
                let row = runtime
                    .block_on(run_one(&bin, backend, &file))
                    .with_context(|| format!("{} with {size} entries{of}", backend.name()))?;
                row.print_progress();
                rows.push(row);
            }
        }
    }
    print_table(&rows);
    print_targets(&rows);
    Ok(())
}

// ---------------------------------------------------------------------------
// Setup: sizes (the server binary and the backends are in `common`).

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

/// `BENCH_RUNS=5`: how many times each (backend, size) runs; 1 by default.
fn runs() -> Result<usize> {
    let Ok(text) = std::env::var("BENCH_RUNS") else {
        return Ok(1);
    };
    let runs = text
        .trim()
        .parse::<usize>()
        .with_context(|| format!("BENCH_RUNS: bad count {text:?}"))?;
    ensure!(runs >= 1, "BENCH_RUNS needs at least 1");
    Ok(runs)
}

/// `BENCH_GROWTH=1000000`: run the account-growth scenario instead (see
/// [`import_growth`]) with large imports of that many entries.
fn growth_size() -> Result<Option<usize>> {
    let Ok(text) = std::env::var("BENCH_GROWTH") else {
        return Ok(None);
    };
    let size = text
        .trim()
        .replace('_', "")
        .parse::<usize>()
        .with_context(|| format!("BENCH_GROWTH: bad size {text:?}"))?;
    ensure!(size >= 10, "BENCH_GROWTH needs a size of at least 10");
    Ok(Some(size))
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
        ImportFile::generate_from(entries, 0)
    }

    /// Like [`ImportFile::generate`], with unique addresses numbered from
    /// `first` (files from far apart `first`s share no address).
    fn generate_from(entries: usize, first: u64) -> ImportFile {
        let mut rng = StdRng::seed_from_u64(SEED);
        let mut text = String::with_capacity(entries * 36);
        let mut expected = Expected::default();
        let mut unique = 0u64;
        for line in 0..entries as u64 {
            let roll = rng.random_range(0..100);
            if roll < 3 {
                text.push_str(&invalid_address(&mut rng, line));
                expected.invalid += 1;
            } else if roll < 6 && unique > 0 {
                let earlier = address(first + rng.random_range(0..unique));
                let upper = rng.random_bool(0.5);
                text.push_str(&if upper {
                    earlier.to_ascii_uppercase()
                } else {
                    earlier
                });
                expected.duplicate += 1;
            } else if roll < 16 {
                let given = FIRST_NAMES[rng.random_range(0..FIRST_NAMES.len())];
                let last = LAST_NAMES[rng.random_range(0..LAST_NAMES.len())];
                text.push_str(&format!("{given} {last} <{}>", address(first + unique)));
                unique += 1;
            } else {
                text.push_str(&address(first + unique));
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
    match rng.random_range(0..4) {
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
    /// Seconds the database's own bulk path takes for the same rows.
    floor_secs: f64,
    /// SQLite: the same copy row by row.
    floor_row_by_row_secs: Option<f64>,
}

impl Row {
    fn entries_per_sec(&self) -> f64 {
        self.entries as f64 / self.secs_to_201
    }

    /// The import's time as a multiple of the floor.
    fn floor_ratio(&self) -> f64 {
        self.secs_to_201 / self.floor_secs
    }

    /// The row-by-row floor and the import's time as a multiple of it, or
    /// `-` where there is none.
    fn row_by_row(&self) -> (String, String) {
        match self.floor_row_by_row_secs {
            Some(secs) => (
                format!("{secs:.2}"),
                format!("{:.2}", self.secs_to_201 / secs),
            ),
            None => ("-".into(), "-".into()),
        }
    }

    fn print_progress(&self) {
        let (rows_secs, rows_ratio) = self.row_by_row();
        println!(
            "  201 after {:.2} s ({:.0} entries/s); VmHWM {:.1} MB, VmRSS {:.1} MB; pages: first {:.2} ms, deep {:.2} ms; \
             the database's own bulk path {:.2} s ({:.2}x; row by row {rows_secs} s, {rows_ratio}x)",
            self.secs_to_201,
            self.entries_per_sec(),
            self.peak_rss_mb,
            self.rss_mb,
            self.first_page_ms,
            self.deep_page_ms,
            self.floor_secs,
            self.floor_ratio()
        );
    }
}

async fn run_one(bin: &Path, backend: &Backend, file: &ImportFile) -> Result<Row> {
    let dir = tempfile::tempdir().context("cannot make a temp dir")?;
    let database = Database::create(backend, dir.path()).context("cannot create the database")?;
    let mut server = Server::start_without_dispatcher(bin, database.url(), dir.path())?;
    flush_to_disk()?;
    let result = measure(&server, file).await;
    server.stop();
    let m = result.with_context(|| format!("server log: {}", server.log_tail()))?;
    // The floor starts from a quiet database too, as the import did: not
    // while the log the import left is still being copied back.
    database.settle()?;
    let floor = import_floor::measure(bin, backend, &database, dir.path())
        .context("the database's own bulk path")?;
    Ok(Row {
        backend: backend.name(),
        entries: file.entries,
        secs_to_201: m.secs_to_201,
        peak_rss_mb: m.memory.peak_mb,
        rss_mb: m.memory.rss_mb,
        first_page_ms: m.first_page_ms,
        deep_page_ms: m.deep_page_ms,
        floor_secs: floor.secs,
        floor_row_by_row_secs: floor.row_by_row_secs,
    })
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
    post_import_as(client, base, file, API_KEY).await
}

/// [`post_import`] with another account's key.
async fn post_import_as(
    client: &reqwest::Client,
    base: &str,
    file: &ImportFile,
    key: &str,
) -> Result<(f64, serde_json::Value)> {
    let started = Instant::now();
    let response = client
        .post(format!("{base}/imports?filename=bench.txt"))
        .bearer_auth(key)
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
    // A report cursor is the position of the last entry already read.
    let url = format!("{base}/imports/{id}/report?limit={PAGE_LIMIT}&cursor={position}");
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
// Output.

fn print_table(rows: &[Row]) {
    println!();
    println!(
        "{:<9} {:>9} {:>11} {:>10} {:>6} {:>15} {:>10} {:>15} {:>11} {:>13} {:>12}",
        "backend",
        "entries",
        "secs_to_201",
        "floor_secs",
        "ratio",
        "row_by_row_secs",
        "rows_ratio",
        "entries_per_sec",
        "peak_rss_MB",
        "first_page_ms",
        "deep_page_ms"
    );
    for row in rows {
        let (rows_secs, rows_ratio) = row.row_by_row();
        println!(
            "{:<9} {:>9} {:>11.2} {:>10.2} {:>6.2} {:>15} {:>10} {:>15.0} {:>11.1} {:>13.2} {:>12.2}",
            row.backend,
            row.entries,
            row.secs_to_201,
            row.floor_secs,
            row.floor_ratio(),
            rows_secs,
            rows_ratio,
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
        match median_by(rows, backend, |row| row.secs_to_201) {
            Some((row, of)) => verdict(
                &label,
                row.secs_to_201 <= limit,
                format!("{:.2} s{of}", row.secs_to_201),
            ),
            None => println!("  {label}: not measured"),
        }
    }
    for (backend, limit, floor) in [
        ("sqlite", TARGET_SQLITE_FLOOR_RATIO, "INSERT ... SELECT"),
        ("postgres", TARGET_POSTGRES_FLOOR_RATIO, "psql \\copy"),
    ] {
        let label = format!("{TARGET_ENTRIES} entries on {backend} <= {limit}x its {floor}");
        match median_by(rows, backend, Row::floor_ratio) {
            Some((row, of)) => verdict(
                &label,
                row.floor_ratio() <= limit,
                format!(
                    "{:.2} s against {:.2} s: {:.2}x{of}",
                    row.secs_to_201,
                    row.floor_secs,
                    row.floor_ratio()
                ),
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

/// The run of `backend` at [`TARGET_ENTRIES`] in the middle by `key` (of
/// an even count, the slower of the middle two), and `", the median of N
/// runs"` when there are several.
fn median_by<'r>(
    rows: &'r [Row],
    backend: &str,
    key: fn(&Row) -> f64,
) -> Option<(&'r Row, String)> {
    let mut runs: Vec<&Row> = rows
        .iter()
        .filter(|r| r.backend == backend && r.entries == TARGET_ENTRIES)
        .collect();
    runs.sort_by(|a, b| key(a).total_cmp(&key(b)));
    let of = match runs.len() {
        0 | 1 => String::new(),
        n => format!(", the median of {n} runs"),
    };
    Some((*runs.get(runs.len() / 2)?, of))
}

fn verdict(label: &str, met: bool, detail: String) {
    let word = if met { "MET" } else { "MISSED" };
    println!("  {word:<6} {label} ({detail})");
}
