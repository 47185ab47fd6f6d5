//! SQLite's write-ahead log stays bounded while a backlog drains, even
//! with readers always at work (the case where passive checkpoints never
//! let the log start over, and it grew to 4.8 GB).

use crate::helpers::{Backend, TestApp};
use bulk_invite::dispatch::providers::ProviderKind;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The WAL size past which the app empties it, in this test.
const LIMIT: u64 = 2 * 1024 * 1024;
/// What the log may reach: the limit plus what dispatching writes in the
/// second until the next checkpoint, with room for a fast machine. (With
/// passive checkpoints only, this drain grew the log to 27 MiB.)
const BOUND: u64 = 8 * LIMIT;
const INVITATIONS: usize = 10_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_wal_stays_under_its_bound_while_a_backlog_drains_under_constant_reads() {
    let app = TestApp::spawn_tuned(
        Backend::Sqlite,
        |pool| pool.wal_limit_bytes = LIMIT,
        |c| {
            c.dispatcher = true;
            c.dispatch.email_provider = ProviderKind::Log;
            c.dispatch.poll_ms = 20;
        },
    )
    .await;
    let wal = format!("{}-wal", app.database_url.trim_start_matches("sqlite://"));
    let size = move || std::fs::metadata(&wal).map_or(0, |m| m.len());
    let emails: Vec<String> = (0..INVITATIONS).map(|n| format!("p{n}@x.io")).collect();
    let import = app.import(emails.join("\n")).await;
    let id = import["id"].as_str().unwrap().to_owned();
    // The import itself is one transaction; the drain starts from wherever
    // the first checkpoint after it leaves the log.
    let started = Instant::now();
    while size() > LIMIT {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the log was never emptied"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let (done, peak) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
    );
    let watcher = tokio::spawn({
        let (done, peak) = (done.clone(), peak.clone());
        async move {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(size(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    });
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (client, done) = (app.client.clone(), done.clone());
            let (url, key) = (
                app.url(&format!("/imports/{id}/report?limit=50")),
                app.api_key.clone(),
            );
            tokio::spawn(async move {
                while !done.load(Ordering::Relaxed) {
                    let _ = client.get(&url).bearer_auth(&key).send().await;
                }
            })
        })
        .collect();
    let drain = Instant::now();
    loop {
        let current: Value = app
            .get(&format!("/imports/{id}"))
            .await
            .json()
            .await
            .unwrap();
        if current["counts"]["sent"] == INVITATIONS {
            break;
        }
        assert!(
            drain.elapsed() < Duration::from_secs(120),
            "the backlog did not drain: {current}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = drain.elapsed();
    done.store(true, Ordering::Relaxed);
    watcher.await.unwrap();
    for reader in readers {
        reader.await.unwrap();
    }

    let peak = peak.load(Ordering::Relaxed);
    eprintln!(
        "WAL peak {:.1} MiB (bound {} MiB) while {INVITATIONS} invitations drained in {took:?} ({:.0}/s)",
        peak as f64 / 1048576.0,
        BOUND / 1048576,
        INVITATIONS as f64 / took.as_secs_f64()
    );
    assert!(peak <= BOUND, "the WAL reached {peak} bytes, over {BOUND}");
}
