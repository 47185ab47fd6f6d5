//! Provider delivery events applied to invitations. Each event is one
//! transaction: it is recorded as seen (so a replay changes nothing), its
//! invitation moves with its report entry and its import's counts, and an
//! address that bounced, complained, unsubscribed or that the provider
//! refuses goes on the account's suppression list.

use super::lifecycle::{self, Change, Target};
use super::schema::{invitations, webhook_events};
use super::suppressions::suppress;
use super::{write_transaction, DbConnection};
use crate::dispatch::events::DeliveryEvent;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error};

/// What an event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The invitation moved to the event's status.
    Moved,
    /// The invitation was in a state the event does not move from (already
    /// bounced, accepted, ...), or the event only suppresses the address;
    /// a suppressing event still suppressed it.
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
/// invitation it names, and suppresses the address when the event says so.
#[tracing::instrument(skip(conn, event), fields(event = %event.event_id, kind = ?event.kind))]
pub fn apply(
    conn: &mut DbConnection,
    provider: &str,
    event: &DeliveryEvent,
    now: NaiveDateTime,
) -> QueryResult<Applied> {
    if event.kind.status().is_none() && event.kind.suppression().is_none() {
        return Ok(Applied::Ignored);
    }
    match attempt(conn, provider, event, now) {
        // A copy of the same event, or another event suppressing the same
        // address, committed first; once more sees what it wrote.
        Err(Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
            attempt(conn, provider, event, now)
        }
        other => other,
    }
}

fn attempt(
    conn: &mut DbConnection,
    provider: &str,
    event: &DeliveryEvent,
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
        let moved = match event.kind.status() {
            Some(to) => {
                let change = Change {
                    reason: event.reason.as_deref(),
                    ..Change::new(event.kind.from_states(), to)
                };
                lifecycle::apply(conn, Target::Invitation(id), &change, now)?
            }
            None => Vec::new(),
        };
        // An erased invitation no longer knows its address: nothing to suppress.
        let erased = named.email_key == super::erase::ERASED;
        if let Some(why) = event.kind.suppression().filter(|_| !erased) {
            let why = match event.reason.as_deref() {
                Some(detail) => format!("{why}: {detail}"),
                None => why.to_owned(),
            };
            suppress(
                conn,
                &named.account_id,
                &named.email,
                &named.email_key,
                &why,
                now,
            )?;
        }
        Ok(match moved.is_empty() {
            true => Applied::Unchanged,
            false => Applied::Moved,
        })
    })
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

/// Records a provider event id; false when it was seen before (a replay).
fn first_sighting(
    conn: &mut DbConnection,
    provider: &str,
    event_id: &str,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let seen = webhook_events::table
        .find((provider, event_id))
        .count()
        .get_result::<i64>(conn)?
        > 0;
    if seen {
        return Ok(false);
    }
    diesel::insert_into(webhook_events::table)
        .values((
            webhook_events::provider.eq(provider),
            webhook_events::event_id.eq(event_id),
            webhook_events::received_at.eq(now),
        ))
        .execute(conn)?;
    Ok(true)
}
