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
/// (`invitations_open_address`) as `conn`'s database has it: a query that
/// says it word for word is answered from that index. SQLite's index says
/// it as comparisons (migration `open_status_conditions`): an `IN` list of
/// three in an index's condition costs SQLite a temporary table for every
/// row it writes.
pub fn open_condition(conn: &DbConnection) -> &'static str {
    match conn {
        DbConnection::Pg(_) => PG_OPEN_CONDITION,
        DbConnection::Sqlite(_) => SQLITE_OPEN_CONDITION,
    }
}

/// The condition of the partial index of the others
/// (`invitations_closed_address`), likewise.
pub fn closed_condition(conn: &DbConnection) -> &'static str {
    match conn {
        DbConnection::Pg(_) => "invitations.status NOT IN ('queued', 'sent', 'delivered')",
        DbConnection::Sqlite(_) => {
            "invitations.status <> 'queued' AND invitations.status <> 'sent' \
             AND invitations.status <> 'delivered'"
        }
    }
}

/// [`open_condition`] on PostgreSQL.
pub const PG_OPEN_CONDITION: &str = "invitations.status IN ('queued', 'sent', 'delivered')";

/// [`open_condition`] on SQLite.
pub const SQLITE_OPEN_CONDITION: &str = "(invitations.status = 'queued' \
     OR invitations.status = 'sent' OR invitations.status = 'delivered')";

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::scratch::{sqlite, sqlite_plan};

    /// The words of each condition, as `invitations::list` and re-sending
    /// send them, pick the partial index written for them on SQLite; a
    /// condition that drifted from its index's would still answer, but by
    /// walking every invitation of the account.
    #[test]
    fn sqlite_answers_each_condition_from_its_partial_index() {
        let (_dir, mut conn) = sqlite();
        let conn: &mut DbConnection = &mut conn;
        let (open, closed) = (open_condition(conn), closed_condition(conn));
        let DbConnection::Sqlite(c) = conn else {
            panic!("not SQLite")
        };
        let by_address = "SELECT id FROM invitations WHERE account_id = 'a' \
                          AND email_key = 'k@x.io' AND ";
        let plan = sqlite_plan(c, &format!("{by_address}{open}"));
        assert!(plan.contains("INDEX invitations_open_address"), "{plan}");
        let plan = sqlite_plan(c, &format!("{by_address}{closed}"));
        assert!(plan.contains("INDEX invitations_closed_address"), "{plan}");
    }
}
