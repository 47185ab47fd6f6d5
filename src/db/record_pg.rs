//! Recording a batch's outcomes on PostgreSQL in three statements, one per
//! kind of outcome, each moving the invitations and their report entries
//! together (one round trip each instead of two per invitation).

use super::dispatch::{Claimed, Record};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, Bool, Nullable, Text, Timestamp};

#[derive(QueryableByName)]
struct MovedEntry {
    #[diesel(sql_type = Text)]
    import_id: String,
}

const SENT: &str = "WITH v AS (SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::timestamp[], $5::timestamp[], $6::text[]) \
        AS v(id, message_id, token_hash, sent_at, expires_at, note)), \
    moved AS (UPDATE invitations AS i SET status = 'sent', provider_message_id = v.message_id, \
        token_hash = v.token_hash, sent_at = v.sent_at, expires_at = v.expires_at, last_error = v.note, \
        batch_id = NULL, lease_owner = NULL, lease_expires_at = NULL \
        FROM v WHERE i.id = v.id AND i.status = 'queued' RETURNING i.import_id, i.position) \
    UPDATE import_entries AS e SET status = 'sent', reason = NULL FROM moved \
    WHERE e.import_id = moved.import_id AND e.position = moved.position RETURNING e.import_id";

const FAILED: &str = "WITH v AS (SELECT * FROM UNNEST($1::text[], $2::text[]) AS v(id, reason)), \
    moved AS (UPDATE invitations AS i SET status = 'failed', last_error = v.reason, batch_id = NULL, \
        lease_owner = NULL, lease_expires_at = NULL \
        FROM v WHERE i.id = v.id AND i.status = 'queued' RETURNING i.import_id, i.position, v.reason) \
    UPDATE import_entries AS e SET status = 'failed', reason = moved.reason FROM moved \
    WHERE e.import_id = moved.import_id AND e.position = moved.position RETURNING e.import_id";

const RETRY: &str = "UPDATE invitations AS i SET next_attempt_at = v.at, last_error = v.reason, \
        maybe_sent = v.maybe_sent, lease_owner = NULL, lease_expires_at = NULL \
    FROM UNNEST($1::text[], $2::text[], $3::timestamp[], $4::boolean[]) AS v(id, reason, at, maybe_sent) \
    WHERE i.id = v.id AND i.status = 'queued'";

/// Writes the records; returns `(import id, "sent" | "failed")` for each
/// invitation that moved (one already recorded elsewhere does not).
pub fn record(
    pg: &mut PgConnection,
    records: &[(Claimed, Record)],
) -> QueryResult<Vec<(String, &'static str)>> {
    let mut sent = (vec![], vec![], vec![], vec![], vec![], vec![]);
    let mut failed = (vec![], vec![]);
    let mut retry = (vec![], vec![], vec![], vec![]);
    for (claimed, record) in records {
        let id = claimed.id.as_str();
        match record {
            Record::Sent {
                message_id,
                token_hash,
                sent_at,
                expires_at,
                note,
            } => {
                sent.0.push(id);
                sent.1.push(message_id.as_deref());
                sent.2.push(token_hash.as_str());
                sent.3.push(*sent_at);
                sent.4.push(*expires_at);
                sent.5.push(note.as_deref());
            }
            Record::Failed { reason } => {
                failed.0.push(id);
                failed.1.push(reason.as_str());
            }
            Record::Retry {
                reason,
                at,
                maybe_sent,
            } => {
                retry.0.push(id);
                retry.1.push(reason.as_str());
                retry.2.push(*at);
                retry.3.push(*maybe_sent);
            }
        }
    }
    let mut moved = Vec::new();
    if !sent.0.is_empty() {
        let rows: Vec<MovedEntry> = diesel::sql_query(SENT)
            .bind::<Array<Text>, _>(&sent.0)
            .bind::<Array<Nullable<Text>>, _>(&sent.1)
            .bind::<Array<Text>, _>(&sent.2)
            .bind::<Array<Timestamp>, _>(&sent.3)
            .bind::<Array<Timestamp>, _>(&sent.4)
            .bind::<Array<Nullable<Text>>, _>(&sent.5)
            .load(pg)?;
        moved.extend(rows.into_iter().map(|r| (r.import_id, "sent")));
    }
    if !failed.0.is_empty() {
        let rows: Vec<MovedEntry> = diesel::sql_query(FAILED)
            .bind::<Array<Text>, _>(&failed.0)
            .bind::<Array<Text>, _>(&failed.1)
            .load(pg)?;
        moved.extend(rows.into_iter().map(|r| (r.import_id, "failed")));
    }
    if !retry.0.is_empty() {
        diesel::sql_query(RETRY)
            .bind::<Array<Text>, _>(&retry.0)
            .bind::<Array<Text>, _>(&retry.1)
            .bind::<Array<Timestamp>, _>(&retry.2)
            .bind::<Array<Bool>, _>(&retry.3)
            .execute(pg)?;
    }
    Ok(moved)
}
