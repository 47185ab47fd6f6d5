//! Statements that each backend writes its own way.

/// Runs `$body` with `$c` bound to the backend's own connection (a
/// `PgConnection` or a `SqliteConnection`). A query run through
/// [`DbConnection`](crate::db::DbConnection) itself is written out as SQL
/// on every execution (its cached statement is found by that text); run on
/// the backend's own connection, a fixed query is found by its type. For
/// the API's hottest reads that text was a tenth of their time here.
macro_rules! on_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::db::DbConnection::Pg($c) => $body,
            $crate::db::DbConnection::Sqlite($c) => $body,
        }
    };
}

/// Rows per multi-row `INSERT` on SQLite: a fixed size, so diesel prepares
/// the statement once and reuses it (a statement of a varying number of rows
/// is parsed anew each time, which costs as much as the inserting).
pub const SQLITE_ROWS_PER_INSERT: usize = 128;

/// What [`insert_rows`] does when SQLite turned rows away: the same
/// failure an `INSERT` without `OR IGNORE` would have been, after it.
pub fn all_inserted(table: &str, inserted: usize, rows: usize) -> diesel::QueryResult<()> {
    if inserted == rows {
        return Ok(());
    }
    Err(diesel::result::Error::DatabaseError(
        diesel::result::DatabaseErrorKind::Unknown,
        Box::new(format!(
            "SQLite refused {} of {rows} rows for {table}",
            rows - inserted
        )),
    ))
}

/// SQLite: `INSERT OR IGNORE` of `rows` into `table`, in cached
/// fixed-size multi-row statements, handing `written(rows written, rows
/// asked)` the outcome of each statement (its error ends the insert).
///
/// `OR IGNORE` rather than a plain `INSERT` (or `ON CONFLICT DO NOTHING`,
/// which leaves `NOT NULL` at `ABORT`): a statement that may abort halfway
/// keeps a statement journal, a copy of every page it changes, in case it
/// does (5 % of a 1M import for the report's entries, 12-15 % for the
/// invitations). So each caller says what a row turned away means.
macro_rules! sqlite_insert_or_ignore {
    ($c:expr, $table:expr, $rows:expr, $written:expr) => {{
        const N: usize = $crate::db::macros::SQLITE_ROWS_PER_INSERT;
        let written = &mut $written;
        let rows = &$rows[..];
        let chunks = rows.chunks_exact(N);
        let rest = chunks.remainder();
        for chunk in chunks {
            let chunk: &[_; N] = chunk.try_into().map_err(|_| {
                diesel::result::Error::QueryBuilderError("a chunk of the wrong size".into())
            })?;
            let inserted = diesel::insert_or_ignore_into($table)
                .values(chunk)
                .execute($c)?;
            written(inserted, N)?;
        }
        if !rest.is_empty() {
            let inserted = diesel::insert_or_ignore_into($table)
                .values(rest)
                .execute($c)?;
            written(inserted, rest.len())?;
        }
    }};
}

/// Inserts many rows: cached fixed-size multi-row `INSERT`s on SQLite,
/// binary `COPY` on PostgreSQL (several times faster than `INSERT`).
///
/// On SQLite [`sqlite_insert_or_ignore`], with the count each statement
/// wrote checked ([`all_inserted`]), so a row turned away still fails the
/// write.
macro_rules! insert_rows {
    ($conn:expr, $table:expr, $rows:expr) => {
        match $conn {
            $crate::db::DbConnection::Sqlite(c) => {
                sqlite_insert_or_ignore!(c, $table, $rows, |inserted, asked| {
                    $crate::db::macros::all_inserted(stringify!($table), inserted, asked)
                });
            }
            $crate::db::DbConnection::Pg(c) => {
                diesel::copy_from($table)
                    .from_insertable($rows)
                    .execute(c)?;
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use crate::db::models::User;
    use crate::db::schema::users;
    use crate::db::scratch::sqlite;
    use crate::db::{accounts, now, DbConnection};
    use diesel::prelude::*;

    #[test]
    fn a_row_sqlite_turns_away_fails_the_write_and_nothing_of_it_stays() {
        let (_dir, mut conn) = sqlite();
        let account = accounts::create(&mut conn, "A", "bik_macros_test").unwrap();
        let user = |email: &str| User {
            id: uuid::Uuid::now_v7().to_string(),
            account_id: account.id.clone(),
            email: email.to_owned(),
            email_key: email.to_owned(),
            created_at: now(),
        };
        // A full chunk and a rest, the rest holding an address twice.
        let mut rows: Vec<User> = (0..super::SQLITE_ROWS_PER_INSERT + 2)
            .map(|i| user(&format!("u{i}@x.io")))
            .collect();
        rows.push(user("u0@x.io"));

        let conn: &mut DbConnection = &mut conn;
        let result = conn.transaction(|conn| -> QueryResult<()> {
            insert_rows!(conn, users::table, &rows);
            Ok(())
        });

        let error = result.unwrap_err().to_string();
        assert!(error.contains("refused 1 of 3 rows"), "{error}");
        let left: i64 = users::table.count().get_result(conn).unwrap();
        assert_eq!(left, 0);
    }
}
