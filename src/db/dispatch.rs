//! The dispatch queue: claiming due invitations under a lease, recording
//! each one's outcome, and keeping the import's counts and report in step.

use super::schema::{import_entries, imports, invitations};
use super::{write_transaction, DbConnection};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Text, Timestamp};
use std::collections::BTreeMap;

/// An invitation claimed for sending.
#[derive(Debug, Clone, QueryableByName)]
pub struct Claimed {
    #[diesel(sql_type = Text)]
    pub id: String,
    #[diesel(sql_type = Text)]
    pub account_id: String,
    #[diesel(sql_type = Text)]
    pub import_id: String,
    #[diesel(sql_type = BigInt)]
    pub position: i64,
    #[diesel(sql_type = Text)]
    pub email: String,
    #[diesel(sql_type = Integer)]
    pub attempts: i32,
    #[diesel(sql_type = Integer)]
    pub token_version: i32,
    #[diesel(sql_type = Text)]
    pub batch_id: String,
}

/// What to write for one claimed invitation once its batch was tried.
#[derive(Debug, Clone)]
pub enum Record {
    /// Sent: the provider's message id and the hash of the token it carried.
    Sent {
        message_id: Option<String>,
        token_hash: String,
        sent_at: NaiveDateTime,
        expires_at: NaiveDateTime,
    },
    /// Failed for good, with the provider's reason.
    Failed { reason: String },
    /// Try again at `at` (the batch keeps its id, so a retry is the same batch).
    Retry { reason: String, at: NaiveDateTime },
}

const PG_CLAIM_AGAIN: &str = "UPDATE invitations SET lease_owner = $1, lease_expires_at = $2, attempts = attempts + 1 \
    WHERE id IN (SELECT id FROM invitations WHERE batch_id = (\
        SELECT batch_id FROM invitations WHERE status = 'queued' AND batch_id IS NOT NULL AND next_attempt_at <= $3 \
        AND (lease_expires_at IS NULL OR lease_expires_at < $3) ORDER BY next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED) \
      AND status = 'queued' AND (lease_expires_at IS NULL OR lease_expires_at < $3) LIMIT $4 FOR UPDATE SKIP LOCKED) \
    RETURNING id, account_id, import_id, position, email, attempts, token_version, batch_id";
const PG_CLAIM_NEW: &str = "UPDATE invitations SET lease_owner = $1, lease_expires_at = $2, attempts = attempts + 1, batch_id = $5 \
    WHERE id IN (SELECT id FROM invitations WHERE status = 'queued' AND batch_id IS NULL AND next_attempt_at <= $3 \
      ORDER BY next_attempt_at LIMIT $4 FOR UPDATE SKIP LOCKED) \
    RETURNING id, account_id, import_id, position, email, attempts, token_version, batch_id";
const SQLITE_CLAIM_AGAIN: &str = "UPDATE invitations SET lease_owner = ?1, lease_expires_at = ?2, attempts = attempts + 1 \
    WHERE id IN (SELECT id FROM invitations WHERE batch_id = (\
        SELECT batch_id FROM invitations WHERE status = 'queued' AND batch_id IS NOT NULL AND next_attempt_at <= ?3 \
        AND (lease_expires_at IS NULL OR lease_expires_at < ?3) ORDER BY next_attempt_at LIMIT 1) \
      AND status = 'queued' AND (lease_expires_at IS NULL OR lease_expires_at < ?3) LIMIT ?4) \
    RETURNING id, account_id, import_id, position, email, attempts, token_version, batch_id";
const SQLITE_CLAIM_NEW: &str = "UPDATE invitations SET lease_owner = ?1, lease_expires_at = ?2, attempts = attempts + 1, batch_id = ?5 \
    WHERE id IN (SELECT id FROM invitations WHERE status = 'queued' AND batch_id IS NULL AND next_attempt_at <= ?3 \
      ORDER BY next_attempt_at LIMIT ?4) \
    RETURNING id, account_id, import_id, position, email, attempts, token_version, batch_id";

/// Claims up to `limit` due invitations for `owner` until `lease_until`.
/// A batch that was tried before (a retry, or one whose worker died) is
/// claimed again whole, under its old batch id; otherwise a new batch is
/// formed. On PostgreSQL rows are locked with `FOR UPDATE SKIP LOCKED`, so
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

/// Per-import changes of the counters while recording a batch.
#[derive(Debug, Default)]
struct Delta {
    sent: i64,
    failed: i64,
}

/// Records the outcome of each claimed invitation, and updates the report
/// entries and the import counts in the same transaction. An invitation
/// already recorded by someone else (its lease expired) is left alone.
#[tracing::instrument(skip_all, fields(count = records.len()))]
pub fn record(
    conn: &mut DbConnection,
    records: &[(Claimed, Record)],
    now: NaiveDateTime,
) -> QueryResult<()> {
    write_transaction(conn, |conn| {
        let moved = match conn {
            DbConnection::Pg(pg) => super::record_pg::record(pg, records)?,
            DbConnection::Sqlite(_) => record_each(conn, records)?,
        };
        // Issue 8, point 9: an invitation revoked while its batch was with
        // the provider keeps a link that answers "revoked" (410), not 404,
        // once the provider accepted it. Its counts do not move.
        super::revoke::seal_revoked(conn, records)?;
        let mut deltas: BTreeMap<String, Delta> = BTreeMap::new();
        for (import_id, status) in moved {
            let delta = deltas.entry(import_id).or_default();
            if status == "sent" {
                delta.sent += 1;
            } else {
                delta.failed += 1;
            }
        }
        for (import_id, delta) in deltas {
            update_counts(conn, &import_id, &delta, now)?;
        }
        Ok(())
    })
}

/// Records one invitation at a time (SQLite, where a statement is a
/// function call, not a round trip); returns what moved, like
/// [`super::record_pg::record`].
fn record_each(
    conn: &mut DbConnection,
    records: &[(Claimed, Record)],
) -> QueryResult<Vec<(String, &'static str)>> {
    let mut moved = Vec::new();
    for (claimed, record) in records {
        let this = invitations::table
            .filter(invitations::id.eq(&claimed.id))
            .filter(invitations::status.eq("queued"));
        let (status, reason, changed) = match record {
            Record::Sent {
                message_id,
                token_hash,
                sent_at,
                expires_at,
            } => {
                let changed = diesel::update(this)
                    .set((
                        invitations::status.eq("sent"),
                        invitations::provider_message_id.eq(message_id),
                        invitations::token_hash.eq(token_hash),
                        invitations::sent_at.eq(sent_at),
                        invitations::expires_at.eq(expires_at),
                        invitations::last_error.eq(None::<String>),
                        invitations::batch_id.eq(None::<String>),
                        invitations::lease_owner.eq(None::<String>),
                        invitations::lease_expires_at.eq(None::<NaiveDateTime>),
                    ))
                    .execute(conn)?;
                ("sent", None, changed)
            }
            Record::Failed { reason } => {
                let changed = diesel::update(this)
                    .set((
                        invitations::status.eq("failed"),
                        invitations::last_error.eq(reason),
                        invitations::batch_id.eq(None::<String>),
                        invitations::lease_owner.eq(None::<String>),
                        invitations::lease_expires_at.eq(None::<NaiveDateTime>),
                    ))
                    .execute(conn)?;
                ("failed", Some(reason), changed)
            }
            Record::Retry { reason, at } => {
                diesel::update(this)
                    .set((
                        invitations::next_attempt_at.eq(at),
                        invitations::last_error.eq(reason),
                        invitations::lease_owner.eq(None::<String>),
                        invitations::lease_expires_at.eq(None::<NaiveDateTime>),
                    ))
                    .execute(conn)?;
                continue;
            }
        };
        if changed == 0 {
            continue;
        }
        diesel::update(import_entries::table.find((&claimed.import_id, claimed.position)))
            .set((
                import_entries::status.eq(status),
                import_entries::reason.eq(reason),
            ))
            .execute(conn)?;
        moved.push((claimed.import_id.clone(), status));
    }
    Ok(moved)
}

fn update_counts(
    conn: &mut DbConnection,
    import_id: &str,
    delta: &Delta,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::update(imports::table.find(import_id))
        .set((
            imports::queued.eq(imports::queued - (delta.sent + delta.failed)),
            imports::sent.eq(imports::sent + delta.sent),
            imports::failed.eq(imports::failed + delta.failed),
        ))
        .execute(conn)?;
    diesel::update(
        imports::table
            .find(import_id)
            .filter(imports::queued.eq(0))
            .filter(imports::status.eq("dispatching")),
    )
    .set((
        imports::status.eq("completed"),
        imports::completed_at.eq(now),
    ))
    .execute(conn)?;
    Ok(())
}

/// What the emails of a batch need beyond the invitations themselves.
#[derive(Debug, Default)]
pub struct BatchContext {
    /// Account names by account id.
    pub account_names: BTreeMap<String, String>,
    /// Per-import options by import id: the message and the expiry in days.
    pub imports: BTreeMap<String, (Option<String>, Option<i32>)>,
}

/// The account names and import options of a claimed batch.
pub fn batch_context(conn: &mut DbConnection, claimed: &[Claimed]) -> QueryResult<BatchContext> {
    use super::schema::accounts;
    let accounts: Vec<&str> = claimed.iter().map(|c| c.account_id.as_str()).collect();
    let imports: Vec<&str> = claimed.iter().map(|c| c.import_id.as_str()).collect();
    Ok(BatchContext {
        account_names: accounts::table
            .filter(accounts::id.eq_any(accounts))
            .select((accounts::id, accounts::name))
            .load::<(String, String)>(conn)?
            .into_iter()
            .collect(),
        imports: imports::table
            .filter(imports::id.eq_any(imports))
            .select((imports::id, imports::custom_message, imports::expiry_days))
            .load::<(String, Option<String>, Option<i32>)>(conn)?
            .into_iter()
            .map(|(id, message, days)| (id, (message, days)))
            .collect(),
    })
}
