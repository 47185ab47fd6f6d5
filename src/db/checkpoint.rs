//! Keeping SQLite's write-ahead log bounded. Commits never checkpoint
//! (`wal_autocheckpoint = 0`); a background task calls [`checkpoint`]
//! every second instead. A passive checkpoint copies what it can without
//! waiting, but the log only starts over from its beginning once no reader
//! is still using it, and while dispatching there is always one: the log
//! then grows without end (4.8 GB for a 284 MB database after 300k
//! invitations). So once the log file passes the connection's
//! `journal_size_limit`, the checkpoint is a `TRUNCATE` one: it waits
//! briefly for the readers of the moment to finish (new ones read the
//! database file), copies everything back and empties the file.

use super::{DbConnection, DbError, Pool};
use diesel::connection::SimpleConnection;
use diesel::sql_types::{BigInt, Integer, Text};
use diesel::{QueryableByName, RunQueryDsl, SqliteConnection};

/// The default WAL size past which the log is emptied: 64 MiB.
pub const DEFAULT_WAL_LIMIT_BYTES: u64 = 64 * 1024 * 1024;

/// How long a truncating checkpoint waits for readers and the writer,
/// in ms; one that cannot finish in time is tried again a second later.
const TRUNCATE_WAIT_MS: u64 = 2_000;

#[derive(QueryableByName)]
struct Outcome {
    #[diesel(sql_type = Integer)]
    busy: i32,
}

#[derive(QueryableByName)]
struct BusyTimeout {
    #[diesel(sql_type = BigInt)]
    timeout: i64,
}

#[derive(QueryableByName)]
struct Limit {
    #[diesel(sql_type = BigInt)]
    journal_size_limit: i64,
}

#[derive(QueryableByName)]
struct Database {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    file: String,
}

/// Copies SQLite's write-ahead log back into the database file, and
/// empties the log once it is past its limit (a no-op on PostgreSQL).
/// Long-running processes call it every second or so, since commits do not.
pub fn checkpoint(pool: &Pool) -> Result<(), DbError> {
    let mut conn = pool.get()?;
    let DbConnection::Sqlite(c) = &mut *conn else {
        return Ok(());
    };
    diesel::sql_query("PRAGMA wal_checkpoint(PASSIVE)").load::<Outcome>(c)?;
    let wal_bytes = wal_size(c)?;
    let limit = diesel::sql_query("PRAGMA journal_size_limit")
        .get_result::<Limit>(c)?
        .journal_size_limit;
    if limit < 0 || wal_bytes <= limit as u64 {
        return Ok(());
    }
    // The connection's own busy timeout (the statement timeout) comes back
    // once the truncating checkpoint is done.
    let busy = diesel::sql_query("PRAGMA busy_timeout")
        .get_result::<BusyTimeout>(c)?
        .timeout;
    c.batch_execute(&format!("PRAGMA busy_timeout = {TRUNCATE_WAIT_MS}"))?;
    let outcome = diesel::sql_query("PRAGMA wal_checkpoint(TRUNCATE)").get_result::<Outcome>(c);
    c.batch_execute(&format!("PRAGMA busy_timeout = {busy}"))?;
    match outcome?.busy {
        0 => tracing::debug!(wal_bytes, "the WAL was past its limit and is emptied"),
        _ => tracing::warn!(
            wal_bytes,
            "the WAL is past its limit but readers kept it busy; trying again"
        ),
    }
    Ok(())
}

/// The size of the main database's `-wal` file (0 when there is none).
fn wal_size(c: &mut SqliteConnection) -> Result<u64, DbError> {
    let databases = diesel::sql_query("PRAGMA database_list").load::<Database>(c)?;
    let Some(main) = databases.into_iter().find(|d| d.name == "main") else {
        return Ok(0);
    };
    Ok(std::fs::metadata(format!("{}-wal", main.file)).map_or(0, |m| m.len()))
}
