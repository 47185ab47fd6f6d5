//! Figures for `/metrics`, read from the counters imports already keep (a
//! sum over the imports table, not a scan of the invitations).

use super::models::ImportCounts;
use super::schema::{imports, invitations};
use super::DbConnection;
use diesel::prelude::*;

/// Totals over every account.
#[derive(Debug, Clone, Default)]
pub struct Totals {
    /// Imports by status (`dispatching`, `completed`).
    pub imports: Vec<(String, i64)>,
    /// Entries by status, summed over the imports' counts.
    pub entries: ImportCounts,
    /// Invitations waiting to be sent whose time has come.
    pub due: i64,
}

/// The count columns of `imports`, as summed by [`totals`].
const COLUMNS: [&str; 16] = [
    "entries",
    "invalid",
    "duplicate",
    "existing_user",
    "suppressed",
    "already_invited",
    "invited",
    "queued",
    "sent",
    "failed",
    "delivered",
    "bounced",
    "complained",
    "accepted",
    "expired",
    "revoked",
];

/// Reads the totals.
pub fn totals(conn: &mut DbConnection, now: chrono::NaiveDateTime) -> QueryResult<Totals> {
    let imports_by_status = imports::table
        .group_by(imports::status)
        .select((imports::status, diesel::dsl::count_star()))
        .load::<(String, i64)>(conn)?;
    // The same SQL on both backends (PostgreSQL's SUM of BIGINT is NUMERIC,
    // hence the cast); the column names are the fixed list above.
    let sums: Vec<String> = COLUMNS
        .iter()
        .map(|c| format!("CAST(COALESCE(SUM({c}), 0) AS BIGINT) AS {c}"))
        .collect();
    let entries = diesel::sql_query(format!("SELECT {} FROM imports", sums.join(", ")))
        .get_result::<ImportCounts>(conn)?;
    let due = invitations::table
        .filter(invitations::status.eq("queued"))
        .filter(invitations::next_attempt_at.le(now))
        .count()
        .get_result(conn)?;
    Ok(Totals {
        imports: imports_by_status,
        entries,
        due,
    })
}
