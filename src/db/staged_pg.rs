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
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use std::fmt::Write;

diesel::table! {
    /// The import's invitations until they move into `invitations`.
    import_invitations (id) {
        id -> Text,
        account_id -> Text,
        import_id -> Text,
        position -> BigInt,
        email -> Text,
        email_key -> Text,
        status -> Text,
        next_attempt_at -> Timestamp,
        created_at -> Timestamp,
    }
}

const COLUMNS: &str =
    "id, account_id, import_id, position, email, email_key, status, next_attempt_at, created_at";

/// Makes the temporary table, dropped when the transaction ends.
pub fn begin(pg: &mut PgConnection) -> QueryResult<()> {
    pg.batch_execute(&format!(
        "CREATE TEMPORARY TABLE import_invitations ON COMMIT DROP AS \
         SELECT {COLUMNS} FROM invitations WITH NO DATA"
    ))
}

/// Copies one batch of invitations into the temporary table (text `COPY`).
pub fn stage(pg: &mut PgConnection, rows: &[NewInvitation]) -> QueryResult<()> {
    use import_invitations as t;
    if rows.is_empty() {
        return Ok(());
    }
    let columns = (
        t::id,
        t::account_id,
        t::import_id,
        t::position,
        t::email,
        t::email_key,
        t::status,
        t::next_attempt_at,
        t::created_at,
    );
    diesel::copy_from(t::table)
        .from_raw_data(columns, |out| {
            let mut line = String::with_capacity(256);
            for row in rows {
                line.clear();
                for text in [&row.id, &row.account_id, &row.import_id] {
                    field(&mut line, text);
                }
                // Writing to a String cannot fail.
                let _ = write!(line, "{}\t", row.position);
                for text in [&row.email, &row.email_key] {
                    field(&mut line, text);
                }
                field(&mut line, row.status);
                line.push_str(row.next_attempt_at.text());
                line.push('\t');
                line.push_str(row.created_at.text());
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
/// addresses only).
pub fn finish(pg: &mut PgConnection) -> QueryResult<()> {
    pg.batch_execute(&format!(
        "INSERT INTO invitations ({COLUMNS}) \
         SELECT {COLUMNS} FROM import_invitations ORDER BY email_key; \
         DROP TABLE import_invitations"
    ))
}
