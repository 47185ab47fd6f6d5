//! Delivery events from the providers' webhooks. Each provider's file
//! checks that a request comes from the provider, the way that provider
//! specifies, and reads its payload into [`DeliveryEvent`]s; the wire
//! formats stay in those files. Everything here is pure: header values come
//! in as `Option<&str>`, the clock as an argument.

pub mod postmark;
pub mod resend;
pub mod sendgrid;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// One event of a provider, as the invitation lifecycle needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryEvent {
    /// The provider's id of the event, the same when the provider sends it
    /// again; it is how replays are recognised.
    pub event_id: String,
    /// The invitation the message was sent for, when the event names one.
    pub invitation_id: Option<String>,
    /// What happened.
    pub kind: EventKind,
    /// The provider's explanation (a bounce's SMTP answer), for the report.
    pub reason: Option<String>,
}

/// What an event means for the invitation and for the address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// The receiving server accepted the message.
    Delivered,
    /// The address does not take mail, for good (hard bounces): the
    /// invitation bounced and the address is suppressed.
    Bounced,
    /// The message bounced and the provider cannot tell whether for good:
    /// the invitation bounced, the address is not suppressed.
    BouncedUndetermined,
    /// The recipient marked the message as spam: complained, and suppressed.
    Complained,
    /// The provider refused to send to the address (it is on the
    /// provider's suppression list after a bounce, complaint or
    /// unsubscribe): the invitation failed and the address is suppressed.
    Suppressed,
    /// The provider could not send this message (an invalid address, a
    /// quota, ...): the invitation failed; the address is not suppressed.
    Failed,
    /// The recipient asked for no more mail (or was suppressed by hand):
    /// the address is suppressed, the invitation keeps its state.
    Unsubscribed,
    /// Anything else (opens, clicks, delays, soft bounces, ...):
    /// acknowledged, not acted on.
    Ignored,
}

impl EventKind {
    /// The invitation status the event moves to, if any.
    pub fn status(self) -> Option<&'static str> {
        match self {
            EventKind::Delivered => Some("delivered"),
            EventKind::Bounced | EventKind::BouncedUndetermined => Some("bounced"),
            EventKind::Complained => Some("complained"),
            EventKind::Suppressed | EventKind::Failed => Some("failed"),
            EventKind::Unsubscribed | EventKind::Ignored => None,
        }
    }

    /// The states the event moves an invitation from: a delivery or a
    /// refusal to send only follows sending; a bounce or complaint may come
    /// after the delivery.
    pub fn from_states(self) -> &'static [&'static str] {
        match self {
            EventKind::Delivered | EventKind::Suppressed | EventKind::Failed => &["sent"],
            EventKind::Bounced | EventKind::BouncedUndetermined | EventKind::Complained => {
                &["sent", "delivered"]
            }
            EventKind::Unsubscribed | EventKind::Ignored => &[],
        }
    }

    /// Why the address goes on the account's suppression list, if it does.
    pub fn suppression(self) -> Option<&'static str> {
        match self {
            EventKind::Bounced => Some("bounced"),
            EventKind::Complained => Some("complained"),
            EventKind::Suppressed => Some("refused by the provider"),
            EventKind::Unsubscribed => Some("unsubscribed"),
            EventKind::Delivered
            | EventKind::BouncedUndetermined
            | EventKind::Failed
            | EventKind::Ignored => None,
        }
    }
}

/// Why a webhook request is refused as not coming from the provider.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The provider's webhook setting is unset: nothing is accepted unchecked.
    #[error("this provider's webhook is not configured on this server")]
    NotConfigured,
    /// The configured secret or key cannot be read (an operator's mistake).
    #[error("this provider's webhook is misconfigured on this server: {0}")]
    Misconfigured(&'static str),
    /// A credential or signature header is absent.
    #[error("the request has no {0} header")]
    Missing(&'static str),
    /// A header is there but not in the provider's format.
    #[error("the {0} header is malformed")]
    Malformed(&'static str),
    /// The credentials are not the configured ones.
    #[error("the credentials are not the configured ones")]
    BadCredentials,
    /// No signature matches the body.
    #[error("the signature does not match the body")]
    BadSignature,
    /// The signed timestamp is too far from our clock (a replayed request).
    #[error("the signed timestamp is outside the accepted tolerance")]
    StaleTimestamp,
}

/// Why a verified body cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// Not JSON at all.
    #[error("the body is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// JSON, but not the shape the provider sends.
    #[error("the body is not a {0}")]
    Shape(&'static str),
}

/// Checks a signed timestamp (seconds since the epoch) against `now`, in
/// either direction, within `tolerance_secs`.
pub(crate) fn check_timestamp(
    header: &'static str,
    timestamp: &str,
    now: DateTime<Utc>,
    tolerance_secs: i64,
) -> Result<(), VerifyError> {
    let signed: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| VerifyError::Malformed(header))?;
    let skew = now.timestamp().saturating_sub(signed).saturating_abs();
    match skew <= tolerance_secs.max(0) {
        true => Ok(()),
        false => Err(VerifyError::StaleTimestamp),
    }
}

/// Compares two secrets in constant time (their SHA-256 digests, so the
/// length does not show either).
pub(crate) fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    Sha256::digest(given)
        .ct_eq(&Sha256::digest(expected))
        .into()
}

/// The longest reason kept for the report (SMTP answers can be long).
const MAX_REASON_CHARS: usize = 500;

/// A provider's explanation as the report shows it: trimmed, clipped, and
/// `None` when there is nothing to say.
pub(crate) fn reason(text: Option<&str>) -> Option<String> {
    let text = text.map(str::trim).filter(|t| !t.is_empty())?;
    Some(text.chars().take(MAX_REASON_CHARS).collect())
}

/// A stable id made of the parts of an event that do not change when the
/// provider sends it again, for providers that give none.
pub(crate) fn stable_id(parts: &[&str]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(part.as_bytes());
        // A separator that cannot occur in the parts keeps ("ab","c") and
        // ("a","bc") apart.
        hash.update([0u8]);
    }
    hex::encode(hash.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(secs, 0).unwrap()
    }

    #[test]
    fn a_timestamp_within_the_tolerance_either_way_is_accepted() {
        for signed in ["1000", "700", "1300", " 1000 "] {
            assert_eq!(
                check_timestamp("t", signed, at(1000), 300),
                Ok(()),
                "{signed}"
            );
        }
    }

    #[test]
    fn a_timestamp_outside_the_tolerance_or_unreadable_is_refused() {
        let cases = [
            ("699", VerifyError::StaleTimestamp),
            ("1301", VerifyError::StaleTimestamp),
            ("-9223372036854775808", VerifyError::StaleTimestamp),
            ("", VerifyError::Malformed("t")),
            ("12.5", VerifyError::Malformed("t")),
            ("2026-11-26T00:00:00Z", VerifyError::Malformed("t")),
        ];
        for (signed, expected) in cases {
            assert_eq!(
                check_timestamp("t", signed, at(1000), 300),
                Err(expected),
                "{signed}"
            );
        }
    }

    #[test]
    fn secrets_compare_equal_only_when_identical() {
        assert!(same_secret(b"user:pass", b"user:pass"));
        assert!(!same_secret(b"user:pass", b"user:pasS"));
        assert!(!same_secret(b"user:pass", b"user:pass "));
        assert!(!same_secret(b"", b"user:pass"));
    }

    #[test]
    fn reasons_are_trimmed_clipped_and_never_empty() {
        assert_eq!(
            reason(Some("  550 no such user ")),
            Some("550 no such user".into())
        );
        assert_eq!(reason(Some("   ")), None);
        assert_eq!(reason(None), None);
        assert_eq!(
            reason(Some(&"é".repeat(600))).map(|r| r.chars().count()),
            Some(500)
        );
    }

    #[test]
    fn stable_ids_depend_on_every_part_and_its_boundaries() {
        let id = stable_id(&["Bounce", "m-1", "2026-11-26T10:00:00Z"]);
        assert_eq!(id, stable_id(&["Bounce", "m-1", "2026-11-26T10:00:00Z"]));
        assert_ne!(id, stable_id(&["Delivery", "m-1", "2026-11-26T10:00:00Z"]));
        assert_ne!(stable_id(&["ab", "c"]), stable_id(&["a", "bc"]));
        assert_eq!(id.len(), 64);
    }
}
