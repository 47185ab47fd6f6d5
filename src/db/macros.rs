//! Statements that each backend writes its own way.

/// Rows per multi-row `INSERT` on SQLite: a fixed size, so diesel prepares
/// the statement once and reuses it (a statement of a varying number of rows
/// is parsed anew each time, which costs as much as the inserting).
pub const SQLITE_ROWS_PER_INSERT: usize = 128;

/// Inserts many rows: cached fixed-size multi-row `INSERT`s on SQLite,
/// binary `COPY` on PostgreSQL (several times faster than `INSERT`).
macro_rules! insert_rows {
    ($conn:expr, $table:expr, $rows:expr) => {
        match $conn {
            $crate::db::DbConnection::Sqlite(c) => {
                const N: usize = $crate::db::macros::SQLITE_ROWS_PER_INSERT;
                let rows = &$rows[..];
                let chunks = rows.chunks_exact(N);
                let rest = chunks.remainder();
                for chunk in chunks {
                    let chunk: &[_; N] = chunk.try_into().map_err(|_| {
                        diesel::result::Error::QueryBuilderError("a chunk of the wrong size".into())
                    })?;
                    diesel::insert_into($table).values(chunk).execute(c)?;
                }
                if !rest.is_empty() {
                    diesel::insert_into($table).values(rest).execute(c)?;
                }
            }
            $crate::db::DbConnection::Pg(c) => {
                diesel::copy_from($table)
                    .from_insertable($rows)
                    .execute(c)?;
            }
        }
    };
}
