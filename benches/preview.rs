//! What a dry run costs against the import it previews: a 32 MB file of
//! one-character lines (16 million invalid entries, the worst case for the
//! answer's size), sent once as `dry_run=true` and once as a real import,
//! each to a fresh `bulk-invite serve` on a fresh database, on SQLite and
//! PostgreSQL. Prints each process's peak memory (`VmHWM`), the time to
//! answer, the answer's size, and the ratio preview/import, whose target
//! is at most 2.
//!
//! `cargo bench --bench preview` (PostgreSQL from `BENCH_POSTGRES_URL`, or
//! the local server; skipped when it cannot be reached).

mod common;

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{ensure, Context, Result};
use common::{backends, server_binary, Backend, Database, Memory, Server, API_KEY};

/// 16 million lines of `a`: 32 MB.
const LINES: usize = 16_000_000;
const TARGET_RATIO: f64 = 2.0;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("preview benchmark failed: {error:#}");
            ExitCode::FAILURE
        }
    }
}

struct Row {
    backend: &'static str,
    mode: &'static str,
    seconds: f64,
    answer_bytes: usize,
    peak_mb: f64,
}

fn run() -> Result<()> {
    let bin = server_binary()?;
    let file = "a\n".repeat(LINES);
    let runtime = tokio::runtime::Runtime::new()?;
    let mut rows = Vec::new();
    for backend in backends() {
        for (mode, query) in [("preview", "?dry_run=true"), ("import", "")] {
            let row = runtime.block_on(measure(&bin, &backend, mode, query, &file))?;
            println!(
                "{:<9} {:<8} {:>7.2} s  answer {:>9} B  VmHWM {:>7.1} MB",
                row.backend, row.mode, row.seconds, row.answer_bytes, row.peak_mb
            );
            rows.push(row);
        }
    }
    println!();
    println!("backend   preview/import peak memory (target <= {TARGET_RATIO})");
    for pair in rows.chunks(2) {
        if let [preview, import] = pair {
            let ratio = preview.peak_mb / import.peak_mb;
            let verdict = if ratio <= TARGET_RATIO {
                "ok"
            } else {
                "MISSED"
            };
            println!("{:<9} {ratio:.2} {verdict}", preview.backend);
        }
    }
    Ok(())
}

async fn measure(
    bin: &std::path::Path,
    backend: &Backend,
    mode: &'static str,
    query: &str,
    file: &str,
) -> Result<Row> {
    let dir = tempfile::tempdir().context("cannot make a temp dir")?;
    let database = Database::create(backend, dir.path())?;
    let mut server = Server::start_with_env(
        bin,
        database.url(),
        dir.path(),
        &[
            ("SERVE_DISPATCHER", "false"),
            ("DATABASE_STATEMENT_TIMEOUT_SECS", "0"),
        ],
    )?;
    let client = reqwest::Client::new();
    server.wait_ready(&client).await?;
    let started = Instant::now();
    let response = client
        .post(format!("{}/imports{query}", server.base))
        .bearer_auth(API_KEY)
        .header("Content-Type", "text/plain")
        .body(file.to_owned())
        .send()
        .await?;
    let status = response.status();
    let answer = response.bytes().await?;
    let seconds = started.elapsed().as_secs_f64();
    ensure!(
        status.is_success(),
        "{mode} answered {status}: {}",
        String::from_utf8_lossy(&answer[..answer.len().min(300)])
    );
    let memory = Memory::read(server.pid())?;
    server.stop();
    Ok(Row {
        backend: backend.name(),
        mode,
        seconds,
        answer_bytes: answer.len(),
        peak_mb: memory.peak_mb,
    })
}
