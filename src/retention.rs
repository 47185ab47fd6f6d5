//! The retention sweep: with `REPORT_RETENTION_DAYS` set, `serve` erases
//! the imports older than that, at start and then every
//! `REPORT_RETENTION_SWEEP_SECS`, as `DELETE /imports/{id}` erases one.

use crate::config::RetentionConfig;
use crate::db::erase::{self, Erased};
use crate::db::{now, DbError, Pool};
use std::time::Duration;
use tokio::sync::watch;

/// Imports looked at per query of a sweep.
const BATCH: i64 = 100;

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Imports erased.
    pub erased: usize,
    /// Imports left for the next sweep because a dispatcher was sending
    /// some of their invitations.
    pub busy: usize,
}

/// Erases every import made more than `days` days ago and not yet erased.
pub fn sweep(pool: &Pool, days: u32) -> Result<Swept, DbError> {
    let mut conn = pool.get()?;
    let started = now();
    let before = started - chrono::Duration::days(i64::from(days));
    let mut swept = Swept::default();
    loop {
        let old = erase::older_than(&mut conn, before, BATCH + swept.busy as i64)?;
        // The busy ones come first again (oldest first); skip past them.
        let fresh: Vec<_> = old.into_iter().skip(swept.busy).collect();
        if fresh.is_empty() {
            return Ok(swept);
        }
        for (account_id, import_id) in fresh {
            match erase::erase(&mut conn, &account_id, &import_id, now())? {
                Erased::Done => swept.erased += 1,
                Erased::Busy => swept.busy += 1,
                Erased::NotFound => {}
            }
        }
    }
}

/// Runs [`sweep`] at once and then every `report_retention_sweep_secs`
/// until stopped; does nothing when retention is off (0 days).
pub async fn sweep_until_stopped(
    pool: Pool,
    config: RetentionConfig,
    mut stopped: watch::Receiver<bool>,
) {
    let days = config.report_retention_days;
    if days == 0 {
        return;
    }
    let every = Duration::from_secs(config.report_retention_sweep_secs.max(1));
    while !*stopped.borrow() {
        let pool = pool.clone();
        match tokio::task::spawn_blocking(move || sweep(&pool, days)).await {
            Ok(Ok(swept)) if swept != Swept::default() => {
                tracing::info!(
                    erased = swept.erased,
                    busy = swept.busy,
                    days,
                    "retention sweep"
                )
            }
            Ok(Ok(_)) => {}
            Ok(Err(error)) => tracing::warn!(%error, "retention sweep failed"),
            Err(error) => tracing::warn!(%error, "retention sweep task failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stopped.changed() => {}
        }
    }
}
