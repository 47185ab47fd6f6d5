//! Account size against import time and memory (`BENCH_GROWTH=1000000`):
//! one server per backend (no dispatcher, so every invitation stays open),
//! the small requests that classify addresses against the account timed in
//! the empty account, then three large imports of different addresses in a
//! row, then the same small requests again in the account that now holds
//! three times `BENCH_GROWTH` open invitations.
//!
//! The small requests, each the median of [`SMALL_REPEATS`] tries:
//! a 2-entry import, a 2-entry dry run, `POST /users` with 2 addresses,
//! and `POST /imports/{id}/resend` of a 2-entry import.
//!
//! Then, for comparison and without a target, one large import into a
//! second account of the same database: what a first import costs when
//! the tables and indexes already hold the first account's rows.
//!
//! Targets: each small request after the large imports takes at most
//! [`TARGET_SMALL_RATIO`] times what it took in the empty account; the
//! third large import at most [`TARGET_LARGE_RATIO`] times the first; the
//! server's peak memory stays under 250 MB throughout.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use serde_json::json;

use super::common::{Backend, Database, Memory, Server, API_KEY};
use super::{check_counts, post_import, post_import_as, verdict, ImportFile, TARGET_PEAK_MB};

/// Tries of each small request; the median is reported.
const SMALL_REPEATS: usize = 7;
/// Large imports in a row.
const LARGE_IMPORTS: u64 = 3;
const TARGET_SMALL_RATIO: f64 = 2.0;
const TARGET_LARGE_RATIO: f64 = 1.2;

/// The small requests, in the order they are printed.
const SMALL: [&str; 4] = ["import_2", "preview_2", "users_2", "resend_import"];

/// What one backend measured.
pub struct Growth {
    backend: &'static str,
    size: usize,
    /// Median ms of each [`SMALL`] request in the empty account.
    small_before: [f64; 4],
    /// The same after the large imports.
    small_after: [f64; 4],
    /// Seconds to the 201 of each large import, and the peak memory after it.
    large: Vec<(f64, f64)>,
    /// Seconds to the 201 of one large import into a second account, after
    /// the first account's.
    other_account_secs: f64,
    /// The server's peak memory at the end.
    peak_mb: f64,
}

/// Runs the growth scenario with large imports of `size` entries on every backend.
pub fn run(bin: &std::path::Path, backends: &[Backend], size: usize) -> Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the tokio runtime")?;
    let mut rows = Vec::new();
    for backend in backends {
        println!(
            "\n{}: small requests, {LARGE_IMPORTS} imports of {size}, small requests again",
            backend.name()
        );
        let dir = tempfile::tempdir().context("cannot make a temp dir")?;
        let database = Database::create(backend, dir.path())?;
        let mut server = Server::start_without_dispatcher(bin, database.url(), dir.path())?;
        let result = runtime
            .block_on(measure(bin, &server, &database, backend.name(), size))
            .with_context(|| format!("server log: {}", server.log_tail()));
        server.stop();
        rows.push(result?);
    }
    print(&rows);
    Ok(())
}

async fn measure(
    bin: &std::path::Path,
    server: &Server,
    database: &Database,
    backend: &'static str,
    size: usize,
) -> Result<Growth> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(900))
        .build()?;
    server.wait_ready(&client).await?;
    let mut small = Small {
        client: &client,
        base: &server.base,
        serial: 0,
    };
    let small_before = small.all().await?;
    println!("  empty account: {}", small_line(&small_before));
    let mut large = Vec::new();
    for round in 0..LARGE_IMPORTS {
        let file = ImportFile::generate_from(size, round * 100_000_000);
        database.settle()?;
        let (secs, import) = post_import(&client, &server.base, &file).await?;
        check_counts(&import, &file)?;
        let peak = Memory::read(server.pid())?.peak_mb;
        println!(
            "  import {} of {size}: {secs:.2} s, VmHWM {peak:.1} MB",
            round + 1
        );
        large.push((secs, peak));
    }
    database.settle()?;
    let small_after = small.all().await?;
    println!("  after:         {}", small_line(&small_after));
    let other_key = create_account(bin, database.url())?;
    let file = ImportFile::generate_from(size, LARGE_IMPORTS * 100_000_000);
    database.settle()?;
    let (other_account_secs, import) =
        post_import_as(&client, &server.base, &file, &other_key).await?;
    check_counts(&import, &file)?;
    println!("  another account's first import of {size}: {other_account_secs:.2} s");
    Ok(Growth {
        backend,
        size,
        small_before,
        small_after,
        large,
        other_account_secs,
        peak_mb: Memory::read(server.pid())?.peak_mb,
    })
}

/// Makes a second account with `bulk-invite accounts create` and returns
/// its API key.
fn create_account(bin: &std::path::Path, database_url: &str) -> Result<String> {
    let output = std::process::Command::new(bin)
        .args(["accounts", "create", "Second account"])
        .env("DATABASE_URL", database_url)
        .output()
        .context("cannot run bulk-invite accounts create")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    ensure!(
        output.status.success(),
        "bulk-invite accounts create failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .split_whitespace()
        .find(|word| word.starts_with("bik_"))
        .map(str::to_owned)
        .with_context(|| format!("no API key in: {stdout}"))
}

fn small_line(ms: &[f64; 4]) -> String {
    SMALL
        .iter()
        .zip(ms)
        .map(|(name, ms)| format!("{name} {ms:.1} ms"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The small requests, each with addresses never used before.
struct Small<'a> {
    client: &'a reqwest::Client,
    base: &'a str,
    serial: u64,
}

impl Small<'_> {
    async fn all(&mut self) -> Result<[f64; 4]> {
        let mut medians = [0.0; 4];
        for (i, median) in medians.iter_mut().enumerate() {
            let mut samples = Vec::with_capacity(SMALL_REPEATS);
            for _ in 0..SMALL_REPEATS {
                samples.push(self.one(i).await?);
            }
            *median = super::median(&mut samples);
        }
        Ok(medians)
    }

    /// Two new addresses.
    fn addresses(&mut self) -> [String; 2] {
        self.serial += 2;
        [
            format!("small{}.a@example.org", self.serial),
            format!("small{}.b@example.org", self.serial),
        ]
    }

    /// Times request `which` of [`SMALL`] in ms.
    async fn one(&mut self, which: usize) -> Result<f64> {
        let [a, b] = self.addresses();
        let file = format!("{a}\n{b}\n");
        let (path, body, content_type, want) = match which {
            0 => ("/imports".to_owned(), file, "text/plain", 201),
            1 => ("/imports?dry_run=true".to_owned(), file, "text/plain", 200),
            2 => (
                "/users".to_owned(),
                json!({ "emails": [a, b] }).to_string(),
                "application/json",
                200,
            ),
            _ => {
                let import = self.post("/imports", file, "text/plain", 201).await?.1;
                let id = import["id"].as_str().context("the import has no id")?;
                (
                    format!("/imports/{id}/resend"),
                    String::new(),
                    "text/plain",
                    200,
                )
            }
        };
        Ok(self.post(&path, body, content_type, want).await?.0)
    }

    async fn post(
        &self,
        path: &str,
        body: String,
        content_type: &str,
        want: u16,
    ) -> Result<(f64, serde_json::Value)> {
        let started = Instant::now();
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(API_KEY)
            .header("Content-Type", content_type)
            .body(body)
            .send()
            .await
            .with_context(|| format!("POST {path} failed"))?;
        let status = response.status();
        let text = response.text().await?;
        let ms = started.elapsed().as_secs_f64() * 1e3;
        ensure!(status == want, "POST {path} answered {status}: {text}");
        Ok((ms, serde_json::from_str(&text).unwrap_or_default()))
    }
}

fn print(rows: &[Growth]) {
    println!(
        "\n{:<9} {:<14} {:>10} {:>14} {:>7}",
        "backend", "request", "empty_ms", "after_3x_ms", "ratio"
    );
    for row in rows {
        for (i, name) in SMALL.iter().enumerate() {
            let (before, after) = (row.small_before[i], row.small_after[i]);
            println!(
                "{:<9} {:<14} {:>10.1} {:>14.1} {:>7.2}",
                row.backend,
                name,
                before,
                after,
                after / before
            );
        }
    }
    // Each large import's time against the first's and the one before's:
    // growth with the account shows in both; a first import that is cheaper
    // only because it went into empty tables shows in `x_first` alone.
    println!(
        "\n{:<9} {:>9} {:>7} {:>11} {:>9} {:>10} {:>11}",
        "backend", "entries", "import", "secs_to_201", "x_first", "x_previous", "peak_rss_MB"
    );
    for row in rows {
        for (n, (secs, peak)) in row.large.iter().enumerate() {
            let previous = row.large[n.saturating_sub(1)].0;
            println!(
                "{:<9} {:>9} {:>7} {:>11.2} {:>9.2} {:>10.2} {:>11.1}",
                row.backend,
                row.size,
                n + 1,
                secs,
                secs / row.large[0].0,
                secs / previous,
                peak
            );
        }
    }
    println!(
        "\n{:<9} {:>9} {:>31}",
        "backend", "entries", "another_account_first_secs"
    );
    for row in rows {
        println!(
            "{:<9} {:>9} {:>31.2}",
            row.backend, row.size, row.other_account_secs
        );
    }
    println!("\ntargets:");
    for row in rows {
        for (i, name) in SMALL.iter().enumerate() {
            let ratio = row.small_after[i] / row.small_before[i];
            verdict(
                &format!(
                    "{} {name} after {LARGE_IMPORTS} x {} <= {TARGET_SMALL_RATIO}x empty",
                    row.backend, row.size
                ),
                ratio <= TARGET_SMALL_RATIO,
                format!("{ratio:.2}x"),
            );
        }
        let (first, last) = (row.large[0].0, row.large[row.large.len() - 1].0);
        verdict(
            &format!(
                "{} import {LARGE_IMPORTS} of {} <= {TARGET_LARGE_RATIO}x import 1",
                row.backend, row.size
            ),
            last <= first * TARGET_LARGE_RATIO,
            format!("{:.2}x", last / first),
        );
        verdict(
            &format!("{} peak memory < {TARGET_PEAK_MB} MB", row.backend),
            row.peak_mb < TARGET_PEAK_MB,
            format!("{:.1} MB", row.peak_mb),
        );
    }
}
