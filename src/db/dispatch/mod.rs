//! The dispatch queue: claiming due invitations under a lease, recording
//! each one's outcome, and keeping the import's counts and report in step.

mod claim;

pub use claim::{claim, release, seal, split, Seal};

use super::schema::{import_entries, imports, invitations};
use super::{write_transaction, DbConnection};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Integer, Nullable, Text, Timestamp};
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
    /// The time the email states it was sent, fixed on the batch's first claim.
    #[diesel(sql_type = Nullable<Timestamp>)]
    pub rendered_at: Option<NaiveDateTime>,
    /// The expiry the email states, fixed on the batch's first claim.
    #[diesel(sql_type = Nullable<Timestamp>)]
    pub rendered_expires_at: Option<NaiveDateTime>,
    /// An earlier try may have reached the provider.
    #[diesel(sql_type = Bool)]
    pub maybe_sent: bool,
    /// The account's name the email states, fixed on the batch's first claim.
    #[diesel(sql_type = Nullable<Text>)]
    pub rendered_account_name: Option<String>,
    /// The reply-to address the email carries, fixed with the name.
    #[diesel(sql_type = Nullable<Text>)]
    pub rendered_reply_to: Option<String>,
}

/// What to write for one claimed invitation once its batch was tried.
#[derive(Debug, Clone)]
pub enum Record {
    /// Sent: the provider's message id and the hash of the token it carried;
    /// `note` when the provider never confirmed it (kept as `last_error`).
    Sent {
        message_id: Option<String>,
        token_hash: String,
        sent_at: NaiveDateTime,
        expires_at: NaiveDateTime,
        note: Option<String>,
    },
    /// Failed for good, with the provider's reason.
    Failed { reason: String },
    /// Try again at `at` (the batch keeps its id, so a retry is the same
    /// batch); `maybe_sent` when a try so far may have reached the provider.
    Retry {
        reason: String,
        at: NaiveDateTime,
        maybe_sent: bool,
    },
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
                note,
            } => {
                let changed = diesel::update(this)
                    .set((
                        invitations::status.eq("sent"),
                        invitations::provider_message_id.eq(message_id),
                        invitations::token_hash.eq(token_hash),
                        invitations::sent_at.eq(sent_at),
                        invitations::expires_at.eq(expires_at),
                        invitations::last_error.eq(note),
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
            Record::Retry {
                reason,
                at,
                maybe_sent,
            } => {
                diesel::update(this)
                    .set((
                        invitations::next_attempt_at.eq(at),
                        invitations::last_error.eq(reason),
                        invitations::maybe_sent.eq(maybe_sent),
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
    /// The accounts' current names and reply-to addresses, by account id.
    pub accounts: BTreeMap<String, AccountContext>,
    /// Per-import options by import id.
    pub imports: BTreeMap<String, ImportContext>,
}

/// What an email says of its account.
#[derive(Debug, Clone, Default)]
pub struct AccountContext {
    pub name: String,
    pub reply_to: Option<String>,
}

/// What an email takes from its import.
#[derive(Debug, Clone, Default)]
pub struct ImportContext {
    pub message: Option<String>,
    pub expiry_days: Option<i32>,
    pub invited_by: Option<String>,
    pub locale: Option<String>,
}

/// The accounts and import options of a claimed batch, read when the batch
/// is rendered (so a renamed account shows its new name in the next email).
pub fn batch_context(conn: &mut DbConnection, claimed: &[Claimed]) -> QueryResult<BatchContext> {
    use super::schema::accounts;
    let account_ids: Vec<&str> = claimed.iter().map(|c| c.account_id.as_str()).collect();
    let import_ids: Vec<&str> = claimed.iter().map(|c| c.import_id.as_str()).collect();
    let accounts = accounts::table
        .filter(accounts::id.eq_any(account_ids))
        .select((accounts::id, accounts::name, accounts::reply_to))
        .load::<(String, String, Option<String>)>(conn)?
        .into_iter()
        .map(|(id, name, reply_to)| (id, AccountContext { name, reply_to }))
        .collect();
    let imports = imports::table
        .filter(imports::id.eq_any(import_ids))
        .select((
            imports::id,
            imports::custom_message,
            imports::expiry_days,
            imports::invited_by,
            imports::locale,
        ))
        .load::<(
            String,
            Option<String>,
            Option<i32>,
            Option<String>,
            Option<String>,
        )>(conn)?
        .into_iter()
        .map(|(id, message, expiry_days, invited_by, locale)| {
            let context = ImportContext {
                message,
                expiry_days,
                invited_by,
                locale,
            };
            (id, context)
        })
        .collect();
    Ok(BatchContext { accounts, imports })
}
