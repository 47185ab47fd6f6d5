//! What to record for each invitation of a batch once the provider
//! answered (or did not): the rules that keep a link working for every
//! email that may have gone out, and spend attempts only on real failures.

use super::compose::Sealed;
use super::pace::{self, backoff};
use super::provider::{BatchError, Outcome, Recovery};
use crate::db::dispatch::{Claimed, Record};
use chrono::NaiveDateTime;
use std::time::Duration;

/// The retry rules of one dispatcher.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    pub max_attempts: i32,
    pub backoff: Duration,
    pub max_backoff: Duration,
    pub recovery: Recovery,
}

/// The outcome every message of a batch gets from a batch-wide error
/// (pauses and splits are handled before this).
pub fn batch_outcome(error: BatchError) -> Outcome {
    match error {
        BatchError::Retry { reason, after } => Outcome::Retry { reason, after },
        BatchError::Unknown { reason } => Outcome::Unknown { reason },
        BatchError::Rejected { reason }
        | BatchError::TooLarge { reason }
        | BatchError::Paused { reason, .. } => Outcome::Failed { reason },
    }
}

impl Rules {
    /// The record for one claimed invitation, or `None` to give it back
    /// untried ([`Outcome::Unsent`]). `c.maybe_sent` says whether an
    /// earlier try may have reached the provider (and was not found since).
    pub fn record(
        &self,
        c: &Claimed,
        outcome: Outcome,
        sealed: &Sealed,
        now: NaiveDateTime,
    ) -> Option<Record> {
        let (reason, after, unknown) = match outcome {
            Outcome::Sent { message_id } => {
                return Some(sent(message_id, sealed, None));
            }
            Outcome::Failed { reason } => return Some(Record::Failed { reason }),
            Outcome::Unsent => return None,
            Outcome::Retry { reason, after } => (reason, after, false),
            Outcome::Unknown { reason } => (reason, None, true),
        };
        let maybe_sent = c.maybe_sent || unknown;
        // Without a way to find out what was accepted, a batch that may
        // have gone out is sent again once, never more.
        let repeated = c.maybe_sent && self.recovery == Recovery::None;
        if c.attempts >= self.max_attempts || repeated {
            return Some(if maybe_sent {
                let note = format!(
                    "the provider never confirmed this email; it may have been sent, \
                     so its link is kept: {reason}"
                );
                sent(None, sealed, Some(note))
            } else {
                Record::Failed { reason }
            });
        }
        let delay = backoff(self.backoff, c.attempts, after, self.max_backoff);
        Some(Record::Retry {
            reason,
            at: pace::after(now, delay),
            maybe_sent,
        })
    }
}

fn sent(message_id: Option<String>, sealed: &Sealed, note: Option<String>) -> Record {
    Record::Sent {
        message_id,
        token_hash: sealed.token_hash.clone(),
        sent_at: sealed.sent_at,
        expires_at: sealed.expires_at,
        note,
    }
}
