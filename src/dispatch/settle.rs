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

/// One outcome per message from what the provider answered (pauses and
/// splits are handled before this). A provider that took the request but
/// answered for a different number of messages leaves them all unknown.
pub fn answered(result: Result<Vec<Outcome>, BatchError>, expected: usize) -> Vec<Outcome> {
    match result {
        Ok(outcomes) if outcomes.len() == expected => outcomes,
        Ok(outcomes) => vec![
            Outcome::Unknown {
                reason: format!(
                    "the provider answered {} results for {expected} messages",
                    outcomes.len()
                ),
            };
            expected
        ],
        Err(error) => vec![batch_outcome(error); expected],
    }
}

/// The outcome every message of a batch gets from a batch-wide error.
fn batch_outcome(error: BatchError) -> Outcome {
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

#[cfg(test)]
mod tests {
    use super::*;

    const CAP: Duration = Duration::from_secs(60);

    fn rules(recovery: Recovery) -> Rules {
        Rules {
            max_attempts: 3,
            backoff: Duration::from_secs(2),
            max_backoff: CAP,
            recovery,
        }
    }

    fn claimed(attempts: i32, maybe_sent: bool) -> Claimed {
        Claimed {
            id: "inv-1".into(),
            account_id: "acc".into(),
            import_id: "imp".into(),
            position: 0,
            email: "ann@x.io".into(),
            attempts,
            token_version: 0,
            batch_id: "batch".into(),
            rendered_at: None,
            rendered_expires_at: None,
            maybe_sent,
            rendered_account_name: None,
            rendered_reply_to: None,
        }
    }

    fn sealed(now: NaiveDateTime) -> Sealed {
        Sealed {
            token_hash: "hash".into(),
            sent_at: now,
            expires_at: now + chrono::Duration::days(7),
        }
    }

    /// What a record comes to, in a shape a table can hold.
    fn kind(record: Option<Record>) -> &'static str {
        match record {
            None => "given back",
            Some(Record::Sent { note: None, .. }) => "sent",
            Some(Record::Sent { note: Some(_), .. }) => "sent, unconfirmed",
            Some(Record::Failed { .. }) => "failed",
            Some(Record::Retry {
                maybe_sent: false, ..
            }) => "retry",
            Some(Record::Retry {
                maybe_sent: true, ..
            }) => "retry, maybe sent",
        }
    }

    #[test]
    fn an_email_that_may_have_gone_out_is_never_failed() {
        let retry = || Outcome::Retry {
            reason: "503".into(),
            after: None,
        };
        let unknown = || Outcome::Unknown {
            reason: "timed out".into(),
        };
        // (recovery, attempts, maybe sent before, outcome, record)
        let cases = [
            (Recovery::Search, 1, false, retry(), "retry"),
            (Recovery::Search, 3, false, retry(), "failed"),
            (Recovery::Search, 3, true, retry(), "sent, unconfirmed"),
            (Recovery::Search, 1, false, unknown(), "retry, maybe sent"),
            (
                Recovery::Idempotent,
                2,
                true,
                unknown(),
                "retry, maybe sent",
            ),
            (
                Recovery::Idempotent,
                3,
                false,
                unknown(),
                "sent, unconfirmed",
            ),
            (Recovery::None, 1, false, unknown(), "retry, maybe sent"),
            (Recovery::None, 2, true, unknown(), "sent, unconfirmed"),
            (Recovery::None, 2, true, retry(), "sent, unconfirmed"),
            (Recovery::None, 1, false, Outcome::Unsent, "given back"),
            (
                Recovery::None,
                3,
                true,
                Outcome::Failed {
                    reason: "invalid".into(),
                },
                "failed",
            ),
        ];
        let now = crate::db::now();
        for (recovery, attempts, maybe_sent, outcome, expected) in cases {
            let case = format!("{recovery:?} {attempts} {maybe_sent} {outcome:?}");
            let record =
                rules(recovery).record(&claimed(attempts, maybe_sent), outcome, &sealed(now), now);
            assert_eq!(kind(record), expected, "{case}");
        }
    }

    #[test]
    fn a_sent_record_keeps_the_link_and_times_the_email_states() {
        let now = crate::db::now();
        let unconfirmed = rules(Recovery::None).record(
            &claimed(1, true),
            Outcome::Unknown {
                reason: "timed out".into(),
            },
            &sealed(now),
            now + chrono::Duration::minutes(5),
        );
        let Some(Record::Sent {
            token_hash,
            sent_at,
            expires_at,
            note,
            ..
        }) = unconfirmed
        else {
            panic!("{unconfirmed:?}");
        };
        assert_eq!(token_hash, "hash");
        assert_eq!(
            (sent_at, expires_at),
            (now, now + chrono::Duration::days(7))
        );
        assert!(note.is_some_and(|n| n.contains("timed out")));
    }

    #[test]
    fn a_retry_waits_no_longer_than_the_cap_whatever_the_provider_said() {
        let now = crate::db::now();
        let record = rules(Recovery::Search).record(
            &claimed(1, false),
            Outcome::Retry {
                reason: "503".into(),
                after: Some(Duration::from_secs(100_000_000_000_000)),
            },
            &sealed(now),
            now,
        );
        let Some(Record::Retry { at, .. }) = record else {
            panic!("{record:?}");
        };
        assert_eq!(at, now + chrono::Duration::seconds(60));
    }
}
