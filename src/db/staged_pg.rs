//! PostgreSQL: an import's invitations go into the table in address order.
//!
//! Each batch is copied into a temporary table (no WAL, no index), and the
//! whole import moves into `invitations` in one `INSERT … SELECT … ORDER BY
//! email_key` at the end. The unique index of open invitations on
//! `(account_id, email_key)` then takes its new entries in key order, a
//! sweep that changes each of its pages once, instead of a million inserts
//! at random places of an index as large as the account's history, each
//! page changed again after every checkpoint (and a page's first change
//! after a checkpoint writes the whole page to the WAL).

use super::models::NewInvitation;
use chrono::NaiveDateTime;
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Text, Timestamp};
use std::fmt::Write;

diesel::table! {
    /// The import's invitations until they move into `invitations`: the
    /// columns that differ from row to row (the account, the import, the
    /// status and the times are the same for all of them, and are added
    /// as they move).
    import_invitations (id) {
        id -> Text,
        position -> BigInt,
        email -> Text,
        email_key -> Text,
    }
}

/// Makes the temporary table, dropped when the transaction ends.
pub fn begin(pg: &mut PgConnection) -> QueryResult<()> {
    pg.batch_execute(
        "CREATE TEMPORARY TABLE import_invitations ON COMMIT DROP AS \
         SELECT id, position, email, email_key FROM invitations WITH NO DATA",
    )
}

/// Copies one batch of invitations into the temporary table (text `COPY`).
/// Their account, import, status and times are those [`finish`] is given.
pub fn stage(pg: &mut PgConnection, rows: &[NewInvitation]) -> QueryResult<()> {
    use import_invitations as t;
    if rows.is_empty() {
        return Ok(());
    }
    diesel::copy_from(t::table)
        .from_raw_data((t::id, t::position, t::email, t::email_key), |out| {
            let mut line = String::with_capacity(128);
            for row in rows {
                line.clear();
                field(&mut line, &row.id);
                // Writing to a String cannot fail.
                let _ = write!(line, "{}\t", row.position);
                field(&mut line, &row.email);
                field(&mut line, &row.email_key);
                // The last field ends the line, not a tab.
                line.pop();
                line.push('\n');
                std::io::Write::write_all(out, line.as_bytes())
                    .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
            }
            QueryResult::Ok(())
        })
        .execute(pg)?;
    Ok(())
}

/// Appends `text` and a tab, escaped for `COPY`'s text format.
fn field(line: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '\\' => line.push_str("\\\\"),
            '\t' => line.push_str("\\t"),
            '\n' => line.push_str("\\n"),
            '\r' => line.push_str("\\r"),
            c => line.push(c),
        }
    }
    line.push('\t');
}

/// Moves the staged invitations into `invitations`, in address order
/// (the account is the same for all of them, so the sort compares the
/// addresses only), as `status` invitations of `account_id` and
/// `import_id`, made and due at `created_at`.
pub fn finish(
    pg: &mut PgConnection,
    account_id: &str,
    import_id: &str,
    status: &str,
    created_at: NaiveDateTime,
) -> QueryResult<()> {
    diesel::sql_query(
        "INSERT INTO invitations \
         (id, account_id, import_id, position, email, email_key, status, next_attempt_at, created_at) \
         SELECT id, $1, $2, position, email, email_key, $3, $4, $4 \
         FROM import_invitations ORDER BY email_key",
    )
    .bind::<Text, _>(account_id)
    .bind::<Text, _>(import_id)
    .bind::<Text, _>(status)
    .bind::<Timestamp, _>(created_at)
    .execute(pg)?;
    pg.batch_execute("DROP TABLE import_invitations")
}
