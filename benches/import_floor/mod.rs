//! The database's own bulk path for the rows an import just wrote (issue
//! 12, point 3): how long the database itself takes to write the very same
//! rows into a fresh database of the same schema, so an import's time can
//! be read as a multiple of what the database could do at best.
//!
//! - SQLite: a fresh file migrated by `bulk-invite migrate` (so the same
//!   tables, indexes and page size), opened with the server's settings
//!   (WAL, `synchronous = NORMAL`, no checkpoint at commit, the import's
//!   page cache), the import's file attached, and one transaction of
//!   `INSERT INTO t SELECT * FROM src.t` for the import's row, its entries
//!   and its invitations.
//! - PostgreSQL: the three tables' rows of the import written to files with
//!   `psql \copy (SELECT ... ORDER BY <primary key>) TO`, a fresh database
//!   migrated the same way, and one `psql --single-transaction` of `\copy t
//!   FROM file` (`COPY FROM STDIN`) per table.
//!
//! Both copy the rows in the file's order (SQLite's tables hold them so;
//! PostgreSQL's primary keys are the import and the position in the file),
//! as loading the file with the database's own tool would. The import
//! itself writes PostgreSQL's invitations sorted by address, so that the
//! index of open addresses takes them in one sweep: copying them in the
//! order the table holds them would hand the floor that sort for free (on
//! a 1M import `\copy` of the invitations took 7.8-9.1 s sorted against
//! 9.8-10.7 s in file order).
//!
//! The account's row is copied before the clock starts (it is not the
//! import's to write). The source stays as the import left it.
//!
//! SQLite's `INSERT INTO t SELECT * FROM src.t` into an empty table of the
//! same schema (no foreign keys on the entries and invitations) is its
//! transfer optimization: records are copied as they are, undecoded, and
//! each index is copied in its own order, an append. No import can write
//! that way, so SQLite's floor is also timed row by row (the same copy with
//! `WHERE 1`, which turns the optimization off): what SQLite itself takes to
//! insert those rows. The targets are against the first, as issue 12 set
//! them.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{ensure, Context, Result};
use diesel::connection::SimpleConnection;
use diesel::{Connection, SqliteConnection};

use super::common::{flush_to_disk, Backend, Database};

/// The tables an import writes, in the order they are copied, and the
/// order of their rows in the file (their primary keys).
const TABLES: [(&str, &str); 3] = [
    ("imports", "id"),
    ("import_entries", "import_id, position"),
    ("invitations", "import_id, position"),
];

/// What the database's own bulk path took.
pub struct Floor {
    /// Seconds to write the rows, as issue 12 measures its floor.
    pub secs: f64,
    /// SQLite: seconds for the same copy row by row (no transfer
    /// optimization).
    pub row_by_row_secs: Option<f64>,
}

/// How long the database's own bulk path takes to write the rows of the
/// database `source` (which the import just wrote) into a fresh database
/// of the same schema; `dir` holds the scratch files.
pub fn measure(bin: &Path, backend: &Backend, source: &Database, dir: &Path) -> Result<Floor> {
    let fresh = |name: &str| -> Result<Database> {
        let target = Database::create(backend, &dir.join(name))?;
        migrate(bin, target.url())?;
        Ok(target)
    };
    match backend {
        Backend::Sqlite => {
            let source = sqlite_path(source.url());
            let secs = sqlite(source, sqlite_path(fresh("floor")?.url()), "")?;
            let row_by_row = sqlite(source, sqlite_path(fresh("floor-rows")?.url()), " WHERE 1")?;
            Ok(Floor {
                secs,
                row_by_row_secs: Some(row_by_row),
            })
        }
        Backend::Postgres { .. } => Ok(Floor {
            secs: postgres(source.url(), fresh("floor")?.url(), dir)?,
            row_by_row_secs: None,
        }),
    }
}

fn sqlite_path(url: &str) -> &str {
    url.trim_start_matches("sqlite://")
}

/// `bulk-invite migrate` on `url`: the schema the server would make.
fn migrate(bin: &Path, url: &str) -> Result<()> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        if let Some(parent) = Path::new(path).parent() {
            std::fs::create_dir_all(parent)?;
        }
    }
    let output = Command::new(bin)
        .arg("migrate")
        .env("DATABASE_URL", url)
        .output()
        .context("cannot run bulk-invite migrate")?;
    ensure!(
        output.status.success(),
        "bulk-invite migrate failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

/// One transaction of `INSERT INTO t SELECT * FROM src.t{filter}` per table.
fn sqlite(source: &str, target: &str, filter: &str) -> Result<f64> {
    let mut conn = SqliteConnection::establish(target)?;
    // The server's connection settings and the page cache an import uses.
    // Without `wal_autocheckpoint = 0` (the server's: it checkpoints in the
    // background, after the 201) the commit would also copy the whole log
    // into the database file and sync it before the clock stops, about
    // 600 MB for 1M entries: a floor taking 1.5-1.8 times as long, and as
    // unsteady as the disk's syncs.
    conn.batch_execute(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
         PRAGMA foreign_keys = ON; PRAGMA wal_autocheckpoint = 0; \
         PRAGMA cache_size = -32768;",
    )?;
    conn.batch_execute(&format!(
        "ATTACH DATABASE '{}' AS src; INSERT INTO accounts SELECT * FROM src.accounts;",
        source.replace('\'', "''")
    ))?;
    let copies: String = TABLES
        .iter()
        .map(|(t, _)| format!("INSERT INTO main.{t} SELECT * FROM src.{t}{filter};"))
        .collect();
    flush_to_disk()?;
    let started = Instant::now();
    conn.batch_execute(&format!("BEGIN IMMEDIATE; {copies} COMMIT;"))?;
    Ok(started.elapsed().as_secs_f64())
}

fn postgres(source: &str, target: &str, dir: &Path) -> Result<f64> {
    let file = |table: &str| dir.join(format!("floor-{table}.copy"));
    let export: String = std::iter::once(("accounts", "id"))
        .chain(TABLES)
        .map(|(t, order)| {
            format!(
                "\\copy (SELECT * FROM {t} ORDER BY {order}) TO '{}'\n",
                file(t).display()
            )
        })
        .collect();
    psql(source, &export, dir.join("export.sql"))?;
    psql(
        target,
        &format!("\\copy accounts FROM '{}'\n", file("accounts").display()),
        dir.join("account.sql"),
    )?;
    let copies: String = TABLES
        .iter()
        .map(|(t, _)| format!("\\copy {t} FROM '{}'\n", file(t).display()))
        .collect();
    flush_to_disk()?;
    let started = Instant::now();
    psql(target, &copies, dir.join("copy.sql"))?;
    let secs = started.elapsed().as_secs_f64();
    for (table, _) in TABLES.iter().chain(&[("accounts", "id")]) {
        let _ = std::fs::remove_file(file(table));
    }
    Ok(secs)
}

/// Runs `script` with psql on `url` in one transaction, stopping at the
/// first error.
fn psql(url: &str, script: &str, path: std::path::PathBuf) -> Result<()> {
    std::fs::write(&path, script)?;
    let output = Command::new("psql")
        .args(["-X", "-q", "--single-transaction", "-v", "ON_ERROR_STOP=1"])
        .arg("-d")
        .arg(url)
        .arg("-f")
        .arg(&path)
        .output()
        .context("cannot run psql (PostgreSQL's client)")?;
    ensure!(
        output.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}
