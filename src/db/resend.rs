//! Re-sending invitations under the rules of importing: an address that is
//! suppressed, that became a user, or that has another open invitation is
//! skipped and counted, never queued. With the database's rule of one open
//! invitation per address and account, this keeps a re-send from ever
//! putting two working links in one person's hands.

use super::address_rule::{expire_account, lock_account};
use super::lifecycle::{self, Change, Moved, Target};
use super::schema::{invitations, suppressions, users};
use super::{budget, write_transaction, DbConnection, DbError};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use std::collections::HashSet;

/// Ids per statement (well under both backends' bound parameters).
const CHUNK: usize = 5_000;

/// Invitations a re-send left alone, by why.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Skipped {
    /// The address is on the account's suppression list.
    pub suppressed: usize,
    /// The address belongs to a user of the account.
    pub existing_user: usize,
    /// Another invitation to the address is open.
    pub already_invited: usize,
}

/// What a re-send did.
#[derive(Debug, Clone, Default)]
pub struct Resent {
    /// The invitations queued again (as they were before).
    pub requeued: Vec<Moved>,
    /// Those left as they were.
    pub skipped: Skipped,
}

/// Queues again, with a fresh token, the invitations of `target` (one, or
/// an import's) in one of the `from` states that importing would invite
/// today. On PostgreSQL the account is locked first, as an import locks
/// it, so a concurrent import or re-send sees what this one queued. What
/// it queues counts against the daily budget (`daily_budget`: the server's
/// default); past it, nothing is queued.
pub fn resend(
    conn: &mut DbConnection,
    account_id: &str,
    target: Target<'_>,
    from: &[&'static str],
    daily_budget: i64,
    now: NaiveDateTime,
) -> Result<Resent, DbError> {
    write_transaction(conn, |conn| {
        lock_account(conn, account_id)?;
        expire_account(conn, account_id, now)?;
        let mut candidates = lifecycle::select(conn, target, from)?;
        // An erased invitation has no address left to send to.
        candidates.retain(|m| m.email_key != super::erase::ERASED);
        let mut skipped = Skipped::default();
        let mut chosen: Vec<String> = Vec::new();
        let mut keys_chosen: HashSet<String> = HashSet::new();
        for chunk in candidates.chunks(CHUNK) {
            let known = Known::load(conn, account_id, chunk)?;
            for m in chunk {
                if known.users.contains(&m.email_key) {
                    skipped.existing_user += 1;
                } else if known.suppressed.contains(&m.email_key) {
                    skipped.suppressed += 1;
                } else if known.open_elsewhere(m) || !keys_chosen.insert(m.email_key.clone()) {
                    skipped.already_invited += 1;
                } else {
                    chosen.push(m.id.clone());
                }
            }
        }
        budget::charge(conn, account_id, daily_budget, chosen.len() as i64, now)?
            .map_err(DbError::BudgetExceeded)?;
        let change = Change::requeue(from, now);
        let mut requeued = Vec::with_capacity(chosen.len());
        for ids in chosen.chunks(CHUNK) {
            let target = Target::Ids { account_id, ids };
            requeued.extend(lifecycle::apply(conn, target, &change, now)?);
        }
        Ok(Resent { requeued, skipped })
    })
}

/// What the account has for the addresses of some candidates.
struct Known {
    users: HashSet<String>,
    suppressed: HashSet<String>,
    /// Open invitations: (address key, invitation id).
    open: Vec<(String, String)>,
}

impl Known {
    fn load(conn: &mut DbConnection, account_id: &str, chunk: &[Moved]) -> QueryResult<Known> {
        let keys: Vec<&str> = chunk.iter().map(|m| m.email_key.as_str()).collect();
        let users = users::table
            .filter(users::account_id.eq(account_id))
            .filter(users::email_key.eq_any(&keys))
            .select(users::email_key)
            .load::<String>(conn)?;
        let suppressed = suppressions::table
            .filter(suppressions::account_id.eq(account_id))
            .filter(suppressions::email_key.eq_any(&keys))
            .select(suppressions::email_key)
            .load::<String>(conn)?;
        let open = invitations::table
            .filter(invitations::account_id.eq(account_id))
            .filter(invitations::email_key.eq_any(&keys))
            // Word for word the index's condition, so it is used.
            .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(
                super::address_rule::open_condition(conn),
            ))
            .select((invitations::email_key, invitations::id))
            .load::<(String, String)>(conn)?;
        Ok(Known {
            users: users.into_iter().collect(),
            suppressed: suppressed.into_iter().collect(),
            open,
        })
    }

    /// Whether an invitation other than `m` is open for its address.
    fn open_elsewhere(&self, m: &Moved) -> bool {
        self.open
            .iter()
            .any(|(key, id)| *key == m.email_key && *id != m.id)
    }
}
