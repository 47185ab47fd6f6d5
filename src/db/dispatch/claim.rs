//! Claiming due invitations under a lease, fixing what their emails say on
//! the first claim, and giving leases back (on a pause, or when a batch is
//! split) without counting the attempt.

use super::Claimed;
use crate::db::schema::invitations;
use crate::db::{write_transaction, DbConnection};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamp};
use std::collections::BTreeMap;

const PG_CLAIM_AGAIN: &str = "UPDATE invitations SET lease_owner = $1, lease_expires_at = $2, attempts = attempts + 1, \
    maybe_sent = (maybe_sent OR lease_expires_at IS NOT NULL) \
    WHERE id IN (SELECT id FROM invitations WHERE batch_id = (\
        SELECT batch_id FROM invitations WHERE status = 'queued' AND batch_id IS NOT NULL AND next_attempt_at <= $3 \
        AND (lease_expires_at IS NULL OR lease_expires_at < $3) ORDER BY next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED) \
      AND status = 'queued' AND (lease_expires_at IS NULL OR lease_expires_at < $3) LIMIT $4 FOR UPDATE SKIP LOCKED) \
    RETURNING id, account_id, import_id, position, email, attempts, token_version, batch_id, \
    rendered_at, rendered_expires_at, maybe_sent, rendered_account_name, rendered_reply_to";
const PG_CLAIM_NEW: &str = "UPDATE invitations SET lease_owner = $1, lease_expires_at = $2, attempts = attempts + 1, batch_id = $5, \
    rendered_at = NULL, rendered_expires_at = NULL, maybe_sent = FALSE, \
    rendered_account_name = NULL, rendered_reply_to = NULL \
    WHERE id IN (SELECT id FROM invitations WHERE status = 'queued' AND batch_id IS NULL AND next_attempt_at <= $3 \
      ORDER BY next_attempt_at LIMIT $4 FOR UPDATE SKIP LOCKED) \
    RETURNING id, account_id, import_id, position, email, attempts, token_version, batch_id, \
    rendered_at, rendered_expires_at, maybe_sent, rendered_account_name, rendered_reply_to";
const SQLITE_CLAIM_AGAIN: &str = "UPDATE invitations SET lease_owner = ?1, lease_expires_at = ?2, attempts = attempts + 1, \
    maybe_sent = (maybe_sent OR lease_expires_at IS NOT NULL) \
    WHERE id IN (SELECT id FROM invitations WHERE batch_id = (\
        SELECT batch_id FROM invitations WHERE status = 'queued' AND batch_id IS NOT NULL AND next_attempt_at <= ?3 \
        AND (lease_expires_at IS NULL OR lease_expires_at < ?3) ORDER BY next_attempt_at LIMIT 1) \
      AND status = 'queued' AND (lease_expires_at IS NULL OR lease_expires_at < ?3) LIMIT ?4) \
    RETURNING id, account_id, import_id, position, email, attempts, token_version, batch_id, \
    rendered_at, rendered_expires_at, maybe_sent, rendered_account_name, rendered_reply_to";
const SQLITE_CLAIM_NEW: &str = "UPDATE invitations SET lease_owner = ?1, lease_expires_at = ?2, attempts = attempts + 1, batch_id = ?5, \
    rendered_at = NULL, rendered_expires_at = NULL, maybe_sent = FALSE, \
    rendered_account_name = NULL, rendered_reply_to = NULL \
    WHERE id IN (SELECT id FROM invitations WHERE status = 'queued' AND batch_id IS NULL AND next_attempt_at <= ?3 \
      ORDER BY next_attempt_at LIMIT ?4) \
    RETURNING id, account_id, import_id, position, email, attempts, token_version, batch_id, \
    rendered_at, rendered_expires_at, maybe_sent, rendered_account_name, rendered_reply_to";

/// Claims up to `limit` due invitations for `owner` until `lease_until`.
/// A batch that was tried before (a retry, or one whose worker died) is
/// claimed again whole, under its old batch id; otherwise a new batch is
/// formed. A member still under an expired lease was being sent by a
/// worker that never recorded the outcome (it died, or hung): it may have
/// gone out, so it is claimed as `maybe_sent`. On PostgreSQL rows are locked with `FOR UPDATE SKIP LOCKED`, so
/// concurrent workers never claim the same invitation.
#[tracing::instrument(skip(conn))]
pub fn claim(
    conn: &mut DbConnection,
    owner: &str,
    now: NaiveDateTime,
    lease_until: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<Claimed>> {
    write_transaction(conn, |conn| {
        let new_batch = uuid::Uuid::now_v7().to_string();
        let (again, new) = match conn {
            DbConnection::Pg(_) => (PG_CLAIM_AGAIN, PG_CLAIM_NEW),
            DbConnection::Sqlite(_) => (SQLITE_CLAIM_AGAIN, SQLITE_CLAIM_NEW),
        };
        let mut rows: Vec<Claimed> = diesel::sql_query(again)
            .bind::<Text, _>(owner)
            .bind::<Timestamp, _>(lease_until)
            .bind::<Timestamp, _>(now)
            .bind::<BigInt, _>(limit)
            .load(conn)?;
        if rows.is_empty() {
            rows = diesel::sql_query(new)
                .bind::<Text, _>(owner)
                .bind::<Timestamp, _>(lease_until)
                .bind::<Timestamp, _>(now)
                .bind::<BigInt, _>(limit)
                .bind::<Text, _>(&new_batch)
                .load(conn)?;
        }
        // RETURNING gives no order; keep the batch in queue order so a
        // retried batch is the same request.
        rows.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(rows)
    })
}

/// Gives back the leases of `owner` that were not recorded (on shutdown or
/// a provider pause), without counting the attempt.
pub fn release(conn: &mut DbConnection, owner: &str, ids: &[String]) -> QueryResult<usize> {
    diesel::update(
        invitations::table
            .filter(invitations::lease_owner.eq(owner))
            .filter(invitations::status.eq("queued"))
            .filter(invitations::id.eq_any(ids)),
    )
    .set((
        invitations::lease_owner.eq(None::<String>),
        invitations::lease_expires_at.eq(None::<NaiveDateTime>),
        invitations::attempts.eq(invitations::attempts - 1),
    ))
    .execute(conn)
}

/// What the email of a newly claimed invitation states, fixed on its
/// first claim so every later try renders the same bytes.
#[derive(Debug, Clone)]
pub struct Seal {
    pub id: String,
    pub rendered_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    /// The account's name and reply-to address when the batch was claimed.
    pub account_name: String,
    pub reply_to: Option<String>,
}

/// Fixes what the emails of a newly claimed batch state (the time, the
/// expiry, the account's name and reply-to), for the members that have
/// none yet; every later try renders from these.
pub fn seal(conn: &mut DbConnection, owner: &str, rows: &[Seal]) -> QueryResult<()> {
    type Key<'a> = (NaiveDateTime, NaiveDateTime, &'a str, Option<&'a str>);
    let mut groups: BTreeMap<Key<'_>, Vec<&str>> = BTreeMap::new();
    for row in rows {
        let key = (
            row.rendered_at,
            row.expires_at,
            row.account_name.as_str(),
            row.reply_to.as_deref(),
        );
        groups.entry(key).or_default().push(&row.id);
    }
    write_transaction(conn, |conn| {
        for ((at, expires, name, reply_to), ids) in groups {
            diesel::update(
                invitations::table
                    .filter(invitations::id.eq_any(ids))
                    .filter(invitations::lease_owner.eq(owner))
                    .filter(invitations::rendered_at.is_null()),
            )
            .set((
                invitations::rendered_at.eq(at),
                invitations::rendered_expires_at.eq(expires),
                invitations::rendered_account_name.eq(name),
                invitations::rendered_reply_to.eq(reply_to),
            ))
            .execute(conn)?;
        }
        Ok(())
    })
}

/// Splits a batch the provider found too large: `moved` become a batch of
/// their own, and every lease of `owner` in `all` is given back without
/// counting the attempt. Both halves keep what their emails say.
pub fn split(
    conn: &mut DbConnection,
    owner: &str,
    all: &[String],
    moved: &[String],
) -> QueryResult<()> {
    write_transaction(conn, |conn| {
        diesel::update(
            invitations::table
                .filter(invitations::lease_owner.eq(owner))
                .filter(invitations::id.eq_any(moved)),
        )
        .set(invitations::batch_id.eq(uuid::Uuid::now_v7().to_string()))
        .execute(conn)?;
        release(conn, owner, all)?;
        Ok(())
    })
}
