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

/// One batch of invitations as the lines of a text `COPY` into the
/// temporary table, for [`stage`]. Made apart from the copy, so the thread
/// that classifies the file can make it while the writing connection is
/// busy with the batch before.
pub fn copy_text(rows: &[NewInvitation]) -> Vec<u8> {
    let mut text = String::with_capacity(rows.len() * 128);
    for row in rows {
        field(&mut text, &row.id);
        // Writing to a String cannot fail.
        let _ = write!(text, "{}\t", row.position);
        field(&mut text, &row.email);
        field(&mut text, &row.email_key);
        // The last field ends the line, not a tab.
        text.pop();
        text.push('\n');
    }
    text.into_bytes()
}

/// Copies one batch of invitations, as [`copy_text`] wrote them, into the
/// temporary table. Their account, import, status and times are those
/// [`finish`] is given.
pub fn stage(pg: &mut PgConnection, text: &[u8]) -> QueryResult<()> {
    use import_invitations as t;
    if text.is_empty() {
        return Ok(());
    }
    diesel::copy_from(t::table)
        .from_raw_data((t::id, t::position, t::email, t::email_key), |out| {
            std::io::Write::write_all(out, text)
                .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))
        })
        .execute(pg)?;
    Ok(())
}

/// Appends `text` and a tab, escaped for `COPY`'s text format.
fn field(line: &mut String, text: &str) {
    if !text.contains(['\\', '\t', '\n', '\r']) {
        line.push_str(text);
        line.push('\t');
        return;
    }
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

#[cfg(test)]
mod tests {
    use super::copy_text;
    use crate::db::models::{NewInvitation, Stamp};

    fn invitation(position: i64, email: &str) -> NewInvitation {
        let stamp = Stamp::new(crate::db::now());
        NewInvitation {
            id: format!("id-{position}"),
            account_id: "account".into(),
            import_id: "import".into(),
            position,
            email_key: email.to_lowercase(),
            email: email.into(),
            status: "queued",
            next_attempt_at: stamp.clone(),
            created_at: stamp,
        }
    }

    #[test]
    fn copy_text_is_one_line_a_row_with_copys_escapes() {
        let rows = [
            invitation(1, "Ann@x.io"),
            invitation(2, "a\\b\tc\nd\re@x.io"),
        ];
        let text = String::from_utf8(copy_text(&rows)).unwrap();
        assert_eq!(
            text,
            "id-1\t1\tAnn@x.io\tann@x.io\n\
             id-2\t2\ta\\\\b\\tc\\nd\\re@x.io\ta\\\\b\\tc\\nd\\re@x.io\n"
        );
        assert!(copy_text(&[]).is_empty());
    }
}
