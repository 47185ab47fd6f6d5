//! Invitation state changes after import: every change moves the
//! invitation, its report entry and its import's counts together, in one
//! transaction, and only from the states it is allowed from, so the counts
//! always agree with the invitations under concurrent events.

use super::schema::{import_entries, imports, invitations};
use super::{write_transaction, DbConnection};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use std::collections::BTreeMap;

/// Which invitations a change applies to.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// One invitation of an account.
    One { account_id: &'a str, id: &'a str },
    /// One invitation, whatever its account (for provider events, which
    /// name the invitation they are about).
    Invitation(&'a str),
    /// All invitations of one import of an account.
    Import {
        account_id: &'a str,
        import_id: &'a str,
    },
    /// Some invitations of an account, by id.
    Ids {
        account_id: &'a str,
        ids: &'a [String],
    },
    /// Every invitation whose expiry has passed.
    ExpiredBy(NaiveDateTime),
    /// Every invitation of an account whose expiry has passed.
    AccountExpiredBy {
        account_id: &'a str,
        now: NaiveDateTime,
    },
}

/// A change of state, with what it writes beside the status.
#[derive(Debug, Clone)]
pub struct Change<'a> {
    /// The states the change is allowed from.
    pub from: &'a [&'static str],
    /// The new state.
    pub to: &'static str,
    /// The reason shown in the report (e.g. a bounce description).
    pub reason: Option<&'a str>,
    /// Queue the invitation again (resend): a fresh token, attempts reset.
    pub requeue_at: Option<NaiveDateTime>,
    /// When the person accepted.
    pub accepted_at: Option<NaiveDateTime>,
    /// Leave alone the invitations [`Moved::unconfirmed`] (a revoke: their
    /// email may be out, and the dispatcher settles them).
    pub spare_unconfirmed: bool,
}

impl<'a> Change<'a> {
    /// Queue again from `from` at `at`, with a fresh token (a resend).
    pub fn requeue(from: &'a [&'static str], at: NaiveDateTime) -> Change<'a> {
        Change {
            requeue_at: Some(at),
            ..Change::new(from, "queued")
        }
    }

    /// A plain move from `from` to `to`.
    pub fn new(from: &'a [&'static str], to: &'static str) -> Change<'a> {
        Change {
            from,
            to,
            reason: None,
            requeue_at: None,
            accepted_at: None,
            spare_unconfirmed: false,
        }
    }
}

/// An invitation row as a change sees it.
#[derive(Debug, Clone, Queryable)]
pub struct Moved {
    pub id: String,
    pub account_id: String,
    pub import_id: String,
    pub position: i64,
    pub email: String,
    pub email_key: String,
    pub status: String,
    /// Until when a dispatcher holds it (it is being sent right now).
    pub lease_expires_at: Option<NaiveDateTime>,
    /// Whether an earlier try of it may have reached the provider (an
    /// unknown outcome the dispatcher has yet to settle).
    pub maybe_sent: bool,
}

impl Moved {
    /// Whether a dispatcher held it at `now`: its batch may already be
    /// with the provider.
    pub fn in_flight(&self, now: NaiveDateTime) -> bool {
        self.status == "queued" && self.lease_expires_at.is_some_and(|until| until >= now)
    }

    /// Whether it waits, unleased, for the dispatcher to settle an unknown
    /// outcome: its email may be out, and only the dispatcher can find out
    /// and keep its link.
    pub fn unconfirmed(&self, now: NaiveDateTime) -> bool {
        self.status == "queued" && self.maybe_sent && !self.in_flight(now)
    }
}

/// Applies `change` to the invitations of `target` that are in one of its
/// `from` states; returns the invitations moved (as they were before).
/// Inside a caller's transaction it runs in a savepoint of it.
pub fn apply(
    conn: &mut DbConnection,
    target: Target<'_>,
    change: &Change<'_>,
    now: NaiveDateTime,
) -> QueryResult<Vec<Moved>> {
    write_transaction(conn, |conn| apply_unguarded(conn, target, change, now))
}

fn apply_unguarded(
    conn: &mut DbConnection,
    target: Target<'_>,
    change: &Change<'_>,
    now: NaiveDateTime,
) -> QueryResult<Vec<Moved>> {
    let mut moved = select(conn, target, change.from)?;
    if change.spare_unconfirmed {
        moved.retain(|m| !m.unconfirmed(now));
    }
    for chunk in moved.chunks(500) {
        let ids: Vec<&str> = chunk.iter().map(|m| m.id.as_str()).collect();
        update_invitations(conn, &ids, change)?;
        for m in chunk {
            update_entry(conn, m, change)?;
        }
    }
    let mut deltas: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    for m in &moved {
        *deltas
            .entry((m.import_id.as_str(), m.status.as_str()))
            .or_default() += 1;
    }
    for ((import_id, from), n) in deltas {
        move_count(conn, import_id, from, change.to, n, now)?;
    }
    Ok(moved)
}

/// Loads the targeted rows of one query with each backend's own connection
/// (the query is the same; PostgreSQL adds `FOR UPDATE`).
macro_rules! load_target {
    ($query:expr, $target:expr, $conn:expr) => {
        match $target {
            Target::One { account_id, id } => $query
                .filter(invitations::account_id.eq(account_id))
                .filter(invitations::id.eq(id))
                .load($conn),
            Target::Import {
                account_id,
                import_id,
            } => $query
                // The account is checked on the import's own row: a filter
                // on the invitations' `account_id` lets PostgreSQL, while it
                // has no statistics of a large new import yet, read the
                // account's whole index beside the import's few rows.
                .filter(
                    invitations::import_id.eq_any(
                        imports::table
                            .filter(imports::id.eq(import_id))
                            .filter(imports::account_id.eq(account_id))
                            .select(imports::id),
                    ),
                )
                .load($conn),
            Target::Invitation(id) => $query.filter(invitations::id.eq(id)).load($conn),
            Target::Ids { account_id, ids } => $query
                .filter(invitations::account_id.eq(account_id))
                .filter(invitations::id.eq_any(ids))
                .load($conn),
            Target::ExpiredBy(now) => $query.filter(invitations::expires_at.lt(now)).load($conn),
            Target::AccountExpiredBy { account_id, now } => $query
                .filter(invitations::account_id.eq(account_id))
                .filter(invitations::expires_at.lt(now))
                // Spelled out, not bound, so SQLite can prove the partial
                // index `invitations_account_expiry` applies (only sent
                // invitations expire); without it an import walks every
                // invitation the account ever had.
                .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(
                    "invitations.status IN ('sent', 'delivered')",
                ))
                .load($conn),
        }
    };
}

/// The invitations of `target` in one of the `from` states (locked on
/// PostgreSQL until the transaction ends).
pub(super) fn select(
    conn: &mut DbConnection,
    target: Target<'_>,
    from: &[&'static str],
) -> QueryResult<Vec<Moved>> {
    let query = invitations::table
        .select((
            invitations::id,
            invitations::account_id,
            invitations::import_id,
            invitations::position,
            invitations::email,
            invitations::email_key,
            invitations::status,
            invitations::lease_expires_at,
            invitations::maybe_sent,
        ))
        .filter(invitations::status.eq_any(from.to_vec()));
    match conn {
        // Lock the rows so a concurrent change waits, then finds them moved.
        DbConnection::Pg(pg) => load_target!(query.for_update(), target, pg),
        DbConnection::Sqlite(sqlite) => load_target!(query, target, sqlite),
    }
}

fn update_invitations(
    conn: &mut DbConnection,
    ids: &[&str],
    change: &Change<'_>,
) -> QueryResult<()> {
    let rows = invitations::table
        .filter(invitations::id.eq_any(ids))
        .filter(invitations::status.eq_any(change.from.to_vec()));
    match change.requeue_at {
        Some(at) => diesel::update(rows)
            .set((
                invitations::status.eq(change.to),
                invitations::token_version.eq(invitations::token_version + 1),
                invitations::token_hash.eq(None::<String>),
                invitations::attempts.eq(0),
                invitations::next_attempt_at.eq(at),
                invitations::batch_id.eq(None::<String>),
                invitations::lease_owner.eq(None::<String>),
                invitations::lease_expires_at.eq(None::<NaiveDateTime>),
                invitations::last_error.eq(None::<String>),
                invitations::sent_at.eq(None::<NaiveDateTime>),
                invitations::expires_at.eq(None::<NaiveDateTime>),
            ))
            .execute(conn)?,
        None => diesel::update(rows)
            .set((
                invitations::status.eq(change.to),
                invitations::accepted_at.eq(change.accepted_at),
                invitations::lease_owner.eq(None::<String>),
                invitations::lease_expires_at.eq(None::<NaiveDateTime>),
            ))
            .execute(conn)?,
    };
    Ok(())
}

fn update_entry(conn: &mut DbConnection, m: &Moved, change: &Change<'_>) -> QueryResult<()> {
    diesel::update(import_entries::table.find((&m.import_id, m.position)))
        .set((
            import_entries::status.eq(change.to),
            import_entries::reason.eq(change.reason),
        ))
        .execute(conn)?;
    Ok(())
}

/// Moves `n` from one count column to another and settles the import's
/// status: `completed` when nothing is queued, else `dispatching`.
fn move_count(
    conn: &mut DbConnection,
    import_id: &str,
    from: &str,
    to: &str,
    n: i64,
    now: NaiveDateTime,
) -> QueryResult<()> {
    let (from, to) = (count_column(from)?, count_column(to)?);
    let (a, b) = match conn {
        DbConnection::Pg(_) => ("$1", "$2"),
        DbConnection::Sqlite(_) => ("?1", "?2"),
    };
    // Column names come from the fixed list of statuses, never from input.
    let sql = format!("UPDATE imports SET {from} = {from} - {a}, {to} = {to} + {a} WHERE id = {b}");
    diesel::sql_query(sql)
        .bind::<BigInt, _>(n)
        .bind::<Text, _>(import_id)
        .execute(conn)?;
    let this = imports::table.find(import_id);
    diesel::update(
        this.filter(imports::queued.eq(0))
            .filter(imports::status.ne("completed")),
    )
    .set((
        imports::status.eq("completed"),
        imports::completed_at.eq(now),
    ))
    .execute(conn)?;
    diesel::update(
        this.filter(imports::queued.gt(0))
            .filter(imports::status.ne("dispatching")),
    )
    .set((
        imports::status.eq("dispatching"),
        imports::completed_at.eq(None::<NaiveDateTime>),
    ))
    .execute(conn)?;
    Ok(())
}

/// The imports column counting a status; only known statuses are columns.
fn count_column(status: &str) -> QueryResult<&'static str> {
    use crate::domain::EntryStatus;
    status
        .parse::<EntryStatus>()
        .map(EntryStatus::as_str)
        .map_err(|e| diesel::result::Error::QueryBuilderError(e.into()))
}
