//! Provider delivery events applied to invitations. Each event is one
//! transaction: it is recorded as seen (so a replay changes nothing), its
//! invitation moves with its report entry and its import's counts, and a
//! bounced or complained address goes on the account's suppression list.

use super::lifecycle::{self, first_sighting, suppress, Change, Target};
use super::schema::invitations;
use super::{write_transaction, DbConnection};
use crate::dispatch::events::{DeliveryEvent, EventKind};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error};

/// What an event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The invitation moved to the event's status.
    Moved,
    /// The invitation was in a state the event does not move from (already
    /// bounced, accepted, ...); a bounce or complaint still suppressed the
    /// address.
    Unchanged,
    /// The event was seen before.
    Replay,
    /// The event names no invitation we have.
    Unknown,
    /// An event of a kind we do not act on.
    Ignored,
}

/// The invitation an event names, as the suppression list needs it.
#[derive(Debug, Queryable)]
struct Named {
    account_id: String,
    email: String,
    email_key: String,
}

/// Applies the events of one webhook post, each on its own.
pub fn apply_all(
    conn: &mut DbConnection,
    provider: &str,
    events: &[DeliveryEvent],
    now: NaiveDateTime,
) -> QueryResult<Vec<Applied>> {
    events
        .iter()
        .map(|event| apply(conn, provider, event, now))
        .collect()
}

/// Applies one event of `provider`: records it as seen, moves the
/// invitation it names, and suppresses the address of a bounce or
/// complaint.
#[tracing::instrument(skip(conn, event), fields(event = %event.event_id, kind = ?event.kind))]
pub fn apply(
    conn: &mut DbConnection,
    provider: &str,
    event: &DeliveryEvent,
    now: NaiveDateTime,
) -> QueryResult<Applied> {
    let Some(to) = event.kind.status() else {
        return Ok(Applied::Ignored);
    };
    match attempt(conn, provider, event, to, now) {
        // A copy of the same event, or another event suppressing the same
        // address, committed first; once more sees what it wrote.
        Err(Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
            attempt(conn, provider, event, to, now)
        }
        other => other,
    }
}

fn attempt(
    conn: &mut DbConnection,
    provider: &str,
    event: &DeliveryEvent,
    to: &'static str,
    now: NaiveDateTime,
) -> QueryResult<Applied> {
    write_transaction(conn, |conn| {
        if !first_sighting(conn, provider, &event.event_id, now)? {
            return Ok(Applied::Replay);
        }
        let Some(id) = event.invitation_id.as_deref() else {
            return Ok(Applied::Unknown);
        };
        let Some(named) = find(conn, id)? else {
            return Ok(Applied::Unknown);
        };
        let change = Change {
            reason: event.reason.as_deref(),
            ..Change::new(from_states(event.kind), to)
        };
        let moved = lifecycle::apply(conn, Target::Invitation(id), &change, now)?;
        if matches!(event.kind, EventKind::Bounced | EventKind::Complained) {
            suppress(
                conn,
                &named.account_id,
                &named.email,
                &named.email_key,
                to,
                now,
            )?;
        }
        Ok(match moved.is_empty() {
            true => Applied::Unchanged,
            false => Applied::Moved,
        })
    })
}

/// The states an event moves an invitation from: a delivery only follows
/// sending; a bounce or complaint may come after the delivery.
fn from_states(kind: EventKind) -> &'static [&'static str] {
    match kind {
        EventKind::Delivered => &["sent"],
        EventKind::Bounced | EventKind::Complained | EventKind::Ignored => &["sent", "delivered"],
    }
}

fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<Named>> {
    invitations::table
        .find(id)
        .select((
            invitations::account_id,
            invitations::email,
            invitations::email_key,
        ))
        .first(conn)
        .optional()
}
