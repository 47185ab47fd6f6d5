//! The account's suppression list: addresses that bounced, complained or
//! that a provider refuses to mail. Imports and re-sends skip them; an
//! administrator can list them and lift one.

use super::schema::suppressions;
use super::DbConnection;
use chrono::NaiveDateTime;
use diesel::prelude::*;

/// A suppressed address.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = suppressions)]
pub struct Suppression {
    pub email: String,
    /// The address key (lower-cased normalised address), the list's order.
    pub email_key: String,
    pub reason: String,
    pub created_at: NaiveDateTime,
}

/// Puts an address on the account's suppression list (once; the first
/// reason stays).
pub fn suppress(
    conn: &mut DbConnection,
    account_id: &str,
    email: &str,
    email_key: &str,
    reason: &str,
    now: NaiveDateTime,
) -> QueryResult<()> {
    let exists = suppressions::table
        .find((account_id, email_key))
        .count()
        .get_result::<i64>(conn)?
        > 0;
    if !exists {
        diesel::insert_into(suppressions::table)
            .values((
                suppressions::account_id.eq(account_id),
                suppressions::email_key.eq(email_key),
                suppressions::email.eq(email),
                suppressions::reason.eq(reason),
                suppressions::created_at.eq(now),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// The account's suppressed addresses after the cursor (an address key),
/// in address order.
pub fn list(
    conn: &mut DbConnection,
    account_id: &str,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<Suppression>> {
    let mut query = suppressions::table
        .filter(suppressions::account_id.eq(account_id))
        .select(Suppression::as_select())
        .order(suppressions::email_key.asc())
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(suppressions::email_key.gt(after.to_owned()));
    }
    query.load(conn)
}

/// Lifts the suppression of an address key; false when there was none.
pub fn lift(conn: &mut DbConnection, account_id: &str, email_key: &str) -> QueryResult<bool> {
    let deleted =
        diesel::delete(suppressions::table.find((account_id, email_key))).execute(conn)?;
    Ok(deleted > 0)
}
