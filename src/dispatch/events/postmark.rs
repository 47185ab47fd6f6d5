//! Postmark's webhooks. Postmark signs nothing: the webhook URL carries
//! basic-auth credentials (`https://user:password@host/webhooks/postmark`)
//! and Postmark sends them as `Authorization: Basic ...`, which is checked
//! against the configured pair.
//!
//! Postmark posts one JSON object per event, told apart by `RecordType`.
//! Our messages carry the invitation id in `Metadata.invitation_id`. What
//! each record does here:
//!
//! - `Delivery`: delivered.
//! - `Bounce`: by its `Type`: `HardBounce`, `BadEmailAddress` and
//!   `ManuallyDeactivated` bounce and suppress; `SpamComplaint` complains;
//!   `Unsubscribe` suppresses the address; `Unknown`, `Blocked` and
//!   `DMARCPolicy` (the message was refused, maybe not for good) bounce
//!   without suppressing; the others (`SoftBounce`, `Transient`,
//!   `DnsError`, `AutoResponder`, ...) are transient or not about the
//!   address and deliberately ignored.
//! - `SpamComplaint`: complained and suppressed.
//! - `SubscriptionChange`: "A subscription change is recorded when an email
//!   address is added or removed from a Message Stream's Suppression list
//!   [...] The SuppressSending field will inform whether that was a
//!   deactivation or reactivation" (Postmark's subscription change
//!   webhook). With `SuppressSending: true`, by its `SuppressionReason`:
//!   `HardBounce` bounces, `SpamComplaint` complains, anything else
//!   (`ManualSuppression`, an unsubscribe) suppresses the address only.
//!   A reactivation (`SuppressSending: false`) is deliberately ignored:
//!   lifting our suppression is an administrator's
//!   `DELETE /suppressions/{email}`.
//! - `Open`, `Click`: not about delivery; deliberately ignored.
//!
//! Postmark gives deliveries no event id, so an event's id is a hash of its
//! `RecordType`, `MessageID` and time (`DeliveredAt`, or `BouncedAt` for
//! bounces and complaints): the same when Postmark retries the post,
//! different for another event about the same message.

use super::{reason, same_secret, stable_id, DeliveryEvent, EventKind, ParseError, VerifyError};
use base64::Engine;
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;

/// The header Postmark sends the URL's credentials in.
pub const AUTHORIZATION: &str = "Authorization";

/// Bounce types that say the address will never take mail. Others are
/// transient (`SoftBounce`, `Transient`, `DnsError`, `AutoResponder`, ...)
/// or not about the address, and are acknowledged without acting.
const PERMANENT_BOUNCES: [&str; 3] = ["HardBounce", "BadEmailAddress", "ManuallyDeactivated"];

/// Checks the request's basic-auth credentials against the configured
/// user and password (both must be configured).
pub fn verify(
    authorization: Option<&str>,
    user: Option<&str>,
    password: Option<&str>,
) -> Result<(), VerifyError> {
    let (Some(user), Some(password)) = (user, password) else {
        return Err(VerifyError::NotConfigured);
    };
    let header = authorization.ok_or(VerifyError::Missing(AUTHORIZATION))?;
    let (scheme, encoded) = header
        .trim()
        .split_once(' ')
        .ok_or(VerifyError::Malformed(AUTHORIZATION))?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(VerifyError::Malformed(AUTHORIZATION));
    }
    let given = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| VerifyError::Malformed(AUTHORIZATION))?;
    let expected = format!("{user}:{password}");
    match same_secret(&given, expected.as_bytes()) {
        true => Ok(()),
        false => Err(VerifyError::BadCredentials),
    }
}

/// The fields of a Postmark webhook record that matter here.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Record {
    record_type: Option<String>,
    #[serde(rename = "MessageID")]
    message_id: Option<String>,
    /// The bounce type (`HardBounce`, `SoftBounce`, `SpamComplaint`, ...).
    #[serde(rename = "Type")]
    bounce_type: Option<String>,
    description: Option<String>,
    details: Option<String>,
    delivered_at: Option<String>,
    bounced_at: Option<String>,
    received_at: Option<String>,
    changed_at: Option<String>,
    suppress_sending: Option<bool>,
    suppression_reason: Option<String>,
    metadata: Option<HashMap<String, Value>>,
}

/// Reads the one event of a Postmark webhook post.
pub fn parse(body: &[u8]) -> Result<Vec<DeliveryEvent>, ParseError> {
    let value: Value = serde_json::from_slice(body)?;
    if !value.is_object() {
        return Err(ParseError::Shape("Postmark webhook object"));
    }
    let record: Record = serde_json::from_value(value)?;
    Ok(vec![event(record)])
}

fn event(record: Record) -> DeliveryEvent {
    // The legacy bounce webhook sent bounces without a RecordType.
    let record_type = match (&record.record_type, &record.bounce_type) {
        (Some(t), _) => t.as_str(),
        (None, Some(_)) => "Bounce",
        (None, None) => "",
    };
    let kind = match record_type {
        "Delivery" => EventKind::Delivered,
        "SpamComplaint" => EventKind::Complained,
        "Bounce" => bounce_kind(record.bounce_type.as_deref()),
        "SubscriptionChange" if record.suppress_sending == Some(true) => {
            match record.suppression_reason.as_deref() {
                Some("HardBounce") => EventKind::Bounced,
                Some("SpamComplaint") => EventKind::Complained,
                _ => EventKind::Unsubscribed,
            }
        }
        // The others, listed in the module's documentation.
        _ => EventKind::Ignored,
    };
    let time = record
        .delivered_at
        .as_deref()
        .or(record.bounced_at.as_deref())
        .or(record.changed_at.as_deref())
        .or(record.received_at.as_deref())
        .unwrap_or_default();
    let message_id = record.message_id.as_deref().unwrap_or_default();
    let reason = match kind {
        EventKind::Bounced | EventKind::BouncedUndetermined | EventKind::Complained => {
            reason(record.details.as_deref())
                .or_else(|| reason(record.description.as_deref()))
                .or_else(|| reason(record.suppression_reason.as_deref()))
        }
        _ => None,
    };
    DeliveryEvent {
        event_id: stable_id(&[record_type, message_id, time]),
        invitation_id: record
            .metadata
            .as_ref()
            .and_then(|m| m.get("invitation_id"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        kind,
        reason,
    }
}

fn bounce_kind(bounce_type: Option<&str>) -> EventKind {
    match bounce_type {
        Some("SpamComplaint") => EventKind::Complained,
        Some(t) if PERMANENT_BOUNCES.contains(&t) => EventKind::Bounced,
        Some("Unsubscribe") => EventKind::Unsubscribed,
        Some("Unknown" | "Blocked" | "DMARCPolicy") => EventKind::BouncedUndetermined,
        _ => EventKind::Ignored,
    }
}

#[cfg(test)]
#[path = "postmark_tests.rs"]
mod tests;
