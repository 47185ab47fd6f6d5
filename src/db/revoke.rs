//! Revoking invitations that may already be with the provider. A revoke or
//! a cancel moves every queued invitation to `revoked`, including those of
//! a batch a dispatcher is sending at that moment (in flight): those may
//! still be emailed. The answer counts them, and when the provider accepts
//! one, [`seal_revoked`] keeps its link answering 410 Gone ("revoked")
//! instead of 404, and its report entry says it was emailed. An invitation
//! waiting for the dispatcher to settle an unknown outcome (its email may
//! be out, and no one here holds its link) is left queued and counted: the
//! dispatcher finds out, and an email that went out keeps a working link.

use super::dispatch::{Claimed, Record};
use super::lifecycle::{self, Change, Target};
use super::schema::{import_entries, invitations};
use super::{write_transaction, DbConnection};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use std::collections::HashSet;

/// What a revoke or cancel did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Revoked {
    /// Invitations now `revoked`.
    pub revoked: usize,
    /// Of those, how many were in a batch being handed to the provider:
    /// they could not be stopped and may still arrive (their links answer
    /// that they were revoked).
    pub in_flight: usize,
    /// Invitations left queued because an earlier try may have reached the
    /// provider (an unknown outcome): the dispatcher finds out, and an
    /// email that went out keeps a working link.
    pub unconfirmed: usize,
}

/// Moves the invitations of `target` in one of the `from` states to
/// `revoked`, counting those in flight.
pub fn revoke(
    conn: &mut DbConnection,
    target: Target<'_>,
    from: &[&'static str],
    now: NaiveDateTime,
) -> QueryResult<Revoked> {
    write_transaction(conn, |conn| {
        let unconfirmed = lifecycle::select(conn, target, &["queued"])?
            .iter()
            .filter(|m| m.unconfirmed(now))
            .count();
        let change = Change {
            spare_unconfirmed: true,
            ..Change::new(from, "revoked")
        };
        let moved = lifecycle::apply(conn, target, &change, now)?;
        Ok(Revoked {
            revoked: moved.len(),
            in_flight: moved.iter().filter(|m| m.in_flight(now)).count(),
            unconfirmed,
        })
    })
}

/// What the report says of an invitation revoked while its batch was with
/// the provider, once the provider accepted it.
pub const SENT_THOUGH_REVOKED: &str =
    "emailed before the revocation took effect; its link answers that it was revoked";

/// Keeps the link of an invitation that was revoked (or its import
/// cancelled) while its batch was with the provider, and that the provider
/// then accepted: the email is out, so its token is stored (the link
/// answers 410 Gone, not 404) with when it was sent, and the report says
/// so. The invitation stays `revoked`; its counts do not move.
pub fn seal_revoked(conn: &mut DbConnection, records: &[(Claimed, Record)]) -> QueryResult<usize> {
    let sent: Vec<&str> = records
        .iter()
        .filter(|(_, record)| matches!(record, Record::Sent { .. }))
        .map(|(claimed, _)| claimed.id.as_str())
        .collect();
    if sent.is_empty() {
        return Ok(0);
    }
    // One query for the batch; almost always nothing was revoked meanwhile.
    let revoked: HashSet<String> = invitations::table
        .filter(invitations::id.eq_any(&sent))
        .filter(invitations::status.eq("revoked"))
        .filter(invitations::token_hash.is_null())
        .select(invitations::id)
        .load::<String>(conn)?
        .into_iter()
        .collect();
    let mut sealed = 0;
    for (claimed, record) in records.iter().filter(|(c, _)| revoked.contains(&c.id)) {
        let Record::Sent {
            message_id,
            token_hash,
            sent_at,
            expires_at,
            ..
        } = record
        else {
            continue;
        };
        let this = invitations::table
            .filter(invitations::id.eq(&claimed.id))
            .filter(invitations::status.eq("revoked"))
            .filter(invitations::batch_id.eq(&claimed.batch_id))
            .filter(invitations::token_hash.is_null());
        let changed = diesel::update(this)
            .set((
                invitations::provider_message_id.eq(message_id),
                invitations::token_hash.eq(token_hash),
                invitations::sent_at.eq(sent_at),
                invitations::expires_at.eq(expires_at),
                invitations::batch_id.eq(None::<String>),
            ))
            .execute(conn)?;
        if changed > 0 {
            diesel::update(import_entries::table.find((&claimed.import_id, claimed.position)))
                .set(import_entries::reason.eq(SENT_THOUGH_REVOKED))
                .execute(conn)?;
            sealed += changed;
        }
    }
    Ok(sealed)
}
