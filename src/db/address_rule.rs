//! The rule of at most one open invitation (queued, sent or delivered) per
//! address and account. The database enforces it (a partial unique index,
//! migration `open_invitation_rules`); the writers that open invitations,
//! imports and re-sends, keep to it by serialising per account and by
//! freeing the places of invitations whose expiry has passed before they
//! look at what is open.

use super::lifecycle::{self, Change, Target};
use super::DbConnection;
use chrono::NaiveDateTime;
use diesel::prelude::*;

/// Invitation statuses that hold the address's one open place.
pub const PENDING: [&str; 3] = ["queued", "sent", "delivered"];

/// The condition of the partial index of open invitations by address
/// (`invitations_open_address`), as SQL both databases match against it.
pub const OPEN_CONDITION: &str = "invitations.status IN ('queued', 'sent', 'delivered')";
/// The condition of the partial index of the others (`invitations_closed_address`).
pub const CLOSED_CONDITION: &str = "invitations.status NOT IN ('queued', 'sent', 'delivered')";

/// Serialises imports and re-sends of one account on PostgreSQL, so two
/// concurrent uploads cannot both invite the same address. (SQLite has one
/// writer.)
pub fn lock_account(conn: &mut DbConnection, account_id: &str) -> QueryResult<()> {
    use super::schema::accounts;
    if let DbConnection::Pg(pg) = conn {
        accounts::table
            .filter(accounts::id.eq(account_id))
            .select(accounts::id)
            // Not FOR UPDATE: that would also block the key-share locks
            // of foreign-key checks (an accept inserting a user) and
            // deadlock with them.
            .for_no_key_update()
            .first::<String>(pg)?;
    }
    Ok(())
}

/// Marks the account's sent invitations whose expiry has passed `expired`
/// now, rather than at the next sweep.
pub fn expire_account(
    conn: &mut DbConnection,
    account_id: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    let target = Target::AccountExpiredBy { account_id, now };
    let change = Change::new(&["sent", "delivered"], "expired");
    Ok(lifecycle::apply(conn, target, &change, now)?.len())
}
