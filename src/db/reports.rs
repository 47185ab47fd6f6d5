//! An import's report: its entries in file order, filtered and paged by
//! position (keyset), so a deep page costs what the first one does.

use super::models::Entry;
use super::schema::import_entries;
use super::DbConnection;
use diesel::prelude::*;

/// Up to `limit` entries of the import after `after` (a position), with one
/// of `statuses` (all when empty), in file order.
#[tracing::instrument(skip(conn))]
pub fn page(
    conn: &mut DbConnection,
    import_id: &str,
    statuses: &[&'static str],
    after: i64,
    limit: i64,
) -> Result<Vec<Entry>, diesel::result::Error> {
    let query = import_entries::table
        .filter(import_entries::import_id.eq(import_id))
        .filter(import_entries::position.gt(after))
        .select(Entry::as_select())
        .order(import_entries::position.asc())
        .limit(limit);
    if statuses.is_empty() {
        // One fixed statement: prepared once per connection and reused
        // (a boxed query is parsed and planned again on every page).
        return query.load(conn);
    }
    query
        .filter(import_entries::status.eq_any(statuses.to_vec()))
        .load(conn)
}
