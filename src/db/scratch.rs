//! For the crate's own tests: a migrated SQLite database in a temporary
//! directory, and SQLite's plan of a query.

use super::{connect, migrate, DbUrl, PooledConnection};
use diesel::{QueryableByName, RunQueryDsl};

/// A connection to a new, migrated SQLite database; the directory holds
/// it, so keep it as long as the connection.
pub fn sqlite() -> (tempfile::TempDir, PooledConnection) {
    let dir = tempfile::tempdir().unwrap();
    let url = DbUrl::parse(&format!("sqlite://{}/t.db", dir.path().display()));
    let mut conn = connect(&url).unwrap().get().unwrap();
    migrate(&mut conn).unwrap();
    (dir, conn)
}

/// SQLite's plan of `sql` (its `detail` lines joined), for the tests that
/// check a query is answered from the index it was written for.
pub fn sqlite_plan(conn: &mut diesel::SqliteConnection, sql: &str) -> String {
    #[derive(QueryableByName)]
    struct Step {
        #[diesel(sql_type = diesel::sql_types::Text)]
        detail: String,
    }
    diesel::sql_query(format!("EXPLAIN QUERY PLAN {sql}"))
        .load::<Step>(conn)
        .unwrap()
        .into_iter()
        .map(|s| s.detail)
        .collect::<Vec<_>>()
        .join("; ")
}
