//! The daily sending budget: at most so many invitations queued (by
//! imports and re-sends) per account in any 24 hours. Each queueing is a
//! row of `budget_charges`; what is used is the sum of the last day's rows.
//! Checked and charged inside the queueing transaction, after the account
//! is locked, so uploads at once cannot together pass it.

use super::schema::{accounts, budget_charges};
use super::DbConnection;
use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

/// The budget's window.
pub const WINDOW_HOURS: i64 = 24;

/// An account's budget now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Invitations allowed per 24 hours (`None`: unlimited).
    pub limit: Option<i64>,
    /// Invitations queued in the last 24 hours.
    pub used: i64,
}

impl Budget {
    /// What is left (`None`: unlimited).
    pub fn remaining(&self) -> Option<i64> {
        self.limit.map(|limit| (limit - self.used).max(0))
    }
}

/// Queueing `requested` more would pass the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{requested} invitations would pass the daily budget of {limit} ({used} used)")]
pub struct Exceeded {
    pub limit: i64,
    pub used: i64,
    pub requested: i64,
    /// Seconds until enough of the last day's queueings leave the window
    /// for `requested` to fit (`None`: it never fits, being over `limit`).
    pub retry_after_secs: Option<i64>,
}

/// The limit that applies: the account's own, else the server's
/// `default`; 0 means unlimited.
pub fn limit(conn: &mut DbConnection, account_id: &str, default: i64) -> QueryResult<Option<i64>> {
    let own: Option<i64> = accounts::table
        .find(account_id)
        .select(accounts::daily_invitations)
        .first(conn)?;
    Ok(Some(own.unwrap_or(default)).filter(|&n| n > 0))
}

/// The account's budget at `now`.
pub fn current(
    conn: &mut DbConnection,
    account_id: &str,
    default: i64,
    now: NaiveDateTime,
) -> QueryResult<Budget> {
    let limit = limit(conn, account_id, default)?;
    let used = charges(conn, account_id, now)?.iter().map(|c| c.1).sum();
    Ok(Budget { limit, used })
}

/// The last day's charges, oldest first.
fn charges(
    conn: &mut DbConnection,
    account_id: &str,
    now: NaiveDateTime,
) -> QueryResult<Vec<(NaiveDateTime, i64)>> {
    budget_charges::table
        .filter(budget_charges::account_id.eq(account_id))
        .filter(budget_charges::charged_at.gt(now - Duration::hours(WINDOW_HOURS)))
        .order(budget_charges::charged_at)
        .select((budget_charges::charged_at, budget_charges::amount))
        .load(conn)
}

/// Charges `amount` queued invitations at `now`, or refuses when that
/// would pass the account's budget. Call inside the queueing transaction,
/// after locking the account; a refusal should roll it back.
pub fn charge(
    conn: &mut DbConnection,
    account_id: &str,
    default: i64,
    amount: i64,
    now: NaiveDateTime,
) -> QueryResult<Result<(), Exceeded>> {
    if amount == 0 {
        return Ok(Ok(()));
    }
    if let Some(limit) = limit(conn, account_id, default)? {
        let charges = charges(conn, account_id, now)?;
        let used: i64 = charges.iter().map(|c| c.1).sum();
        if used + amount > limit {
            return Ok(Err(Exceeded {
                limit,
                used,
                requested: amount,
                retry_after_secs: wait_until_fits(&charges, limit, amount, now),
            }));
        }
    }
    // Rows that left the window are of no more use.
    diesel::delete(
        budget_charges::table
            .filter(budget_charges::account_id.eq(account_id))
            .filter(budget_charges::charged_at.le(now - Duration::hours(WINDOW_HOURS))),
    )
    .execute(conn)?;
    diesel::insert_into(budget_charges::table)
        .values((
            budget_charges::id.eq(uuid::Uuid::now_v7().to_string()),
            budget_charges::account_id.eq(account_id),
            budget_charges::charged_at.eq(now),
            budget_charges::amount.eq(amount),
        ))
        .execute(conn)?;
    Ok(Ok(()))
}

/// Seconds until `amount` fits, as the oldest charges leave the window.
fn wait_until_fits(
    charges: &[(NaiveDateTime, i64)],
    limit: i64,
    amount: i64,
    now: NaiveDateTime,
) -> Option<i64> {
    if amount > limit {
        return None;
    }
    let mut used: i64 = charges.iter().map(|c| c.1).sum();
    for (at, n) in charges {
        used -= n;
        if used + amount <= limit {
            let leaves = *at + Duration::hours(WINDOW_HOURS);
            return Some((leaves - now).num_seconds().max(0) + 1);
        }
    }
    Some(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(hours: i64) -> NaiveDateTime {
        chrono::DateTime::from_timestamp(1_800_000_000 + hours * 3600, 0)
            .unwrap()
            .naive_utc()
    }

    #[test]
    fn the_wait_is_until_enough_old_charges_leave_the_window() {
        let charges = [(at(0), 60), (at(5), 30), (at(10), 10)];
        // 100 used of 100: 20 more fit once the first 60 leave, at hour 24.
        let now = at(12);
        assert_eq!(wait_until_fits(&charges, 100, 20, now), Some(12 * 3600 + 1));
        // 70 more need the first two gone (hour 29).
        assert_eq!(wait_until_fits(&charges, 100, 70, now), Some(17 * 3600 + 1));
        // More than the whole budget never fits.
        assert_eq!(wait_until_fits(&charges, 100, 101, now), None);
    }
}
