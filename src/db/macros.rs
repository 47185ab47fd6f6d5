//! Statements that each backend writes its own way.

/// Inserts many rows: a multi-row `INSERT` on SQLite, binary `COPY` on
/// PostgreSQL (several times faster than `INSERT` for large imports).
macro_rules! insert_rows {
    ($conn:expr, $table:expr, $rows:expr) => {
        match $conn {
            $crate::db::DbConnection::Sqlite(c) => {
                diesel::insert_into($table).values($rows).execute(c)?;
            }
            $crate::db::DbConnection::Pg(c) => {
                diesel::copy_from($table)
                    .from_insertable($rows)
                    .execute(c)?;
            }
        }
    };
}
