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
mod tests {
    use super::*;
    use serde_json::json;

    fn basic(credentials: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(credentials)
        )
    }

    fn check(header: Option<&str>) -> Result<(), VerifyError> {
        verify(header, Some("hook"), Some("s3cret:pw"))
    }

    #[test]
    fn the_configured_credentials_are_accepted() {
        assert_eq!(check(Some(&basic("hook:s3cret:pw"))), Ok(()));
        assert_eq!(
            check(Some(&format!("basic  {}", &basic("hook:s3cret:pw")[6..]))),
            Ok(())
        );
    }

    #[test]
    fn other_or_missing_credentials_are_refused() {
        let cases = [
            (None, VerifyError::Missing(AUTHORIZATION)),
            (Some(basic("hook:wrong")), VerifyError::BadCredentials),
            (Some(basic("other:s3cret:pw")), VerifyError::BadCredentials),
            (Some(basic("hook:s3cret:pw ")), VerifyError::BadCredentials),
            (Some(basic(":")), VerifyError::BadCredentials),
            (Some(basic("")), VerifyError::Malformed(AUTHORIZATION)),
            (
                Some("Bearer aG9vaw==".into()),
                VerifyError::Malformed(AUTHORIZATION),
            ),
            (
                Some("Basic %%%".into()),
                VerifyError::Malformed(AUTHORIZATION),
            ),
            (Some("Basic".into()), VerifyError::Malformed(AUTHORIZATION)),
        ];
        for (header, expected) in cases {
            assert_eq!(check(header.as_deref()), Err(expected), "{header:?}");
        }
    }

    #[test]
    fn an_unconfigured_webhook_accepts_nothing() {
        let header = basic("hook:pw");
        for (user, password) in [(None, None), (Some("hook"), None), (None, Some("pw"))] {
            assert_eq!(
                verify(Some(&header), user, password),
                Err(VerifyError::NotConfigured)
            );
        }
    }

    fn one(payload: Value) -> DeliveryEvent {
        let mut events = parse(payload.to_string().as_bytes()).unwrap();
        assert_eq!(events.len(), 1);
        events.remove(0)
    }

    fn bounce(bounce_type: &str) -> Value {
        json!({
            "RecordType": "Bounce", "MessageStream": "outbound", "ID": 4323372036854775807u64,
            "Type": bounce_type, "TypeCode": 1, "Name": "Hard bounce", "Tag": "",
            "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
            "Metadata": {"invitation_id": "inv-1"}, "ServerID": 23,
            "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
            "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
            "Email": "ann@x.io", "From": "invites@acme.test",
            "BouncedAt": "2026-11-26T16:33:54.9070259Z",
            "DumpAvailable": false, "Inactive": true, "CanActivate": true, "Subject": "Join Acme"
        })
    }

    #[test]
    fn a_delivery_names_its_invitation() {
        let event = one(json!({
            "RecordType": "Delivery", "ServerID": 23, "MessageStream": "outbound",
            "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483", "Recipient": "ann@x.io",
            "Tag": "", "DeliveredAt": "2026-11-26T16:33:54.9070259Z",
            "Details": "Test delivery webhook details", "Metadata": {"invitation_id": "inv-1"}
        }));
        assert_eq!(event.kind, EventKind::Delivered);
        assert_eq!(event.invitation_id.as_deref(), Some("inv-1"));
        assert_eq!(event.reason, None);
    }

    #[test]
    fn permanent_bounces_bounce_and_transient_ones_are_ignored() {
        for (bounce_type, kind) in [
            ("HardBounce", EventKind::Bounced),
            ("BadEmailAddress", EventKind::Bounced),
            ("ManuallyDeactivated", EventKind::Bounced),
            ("SpamComplaint", EventKind::Complained),
            ("SoftBounce", EventKind::Ignored),
            ("Transient", EventKind::Ignored),
            ("DnsError", EventKind::Ignored),
            ("AutoResponder", EventKind::Ignored),
            ("SpamNotification", EventKind::Ignored),
            ("Unsubscribe", EventKind::Unsubscribed),
            ("Unknown", EventKind::BouncedUndetermined),
        ] {
            assert_eq!(one(bounce(bounce_type)).kind, kind, "{bounce_type}");
        }
        let hard = one(bounce("HardBounce"));
        assert!(hard.reason.unwrap().contains("550 5.1.1"));
    }

    #[test]
    fn a_spam_complaint_is_a_complaint_and_opens_are_ignored() {
        let mut complaint = bounce("SpamComplaint");
        complaint["RecordType"] = json!("SpamComplaint");
        assert_eq!(one(complaint).kind, EventKind::Complained);
        let open = json!({"RecordType": "Open", "MessageID": "m", "ReceivedAt": "2026-11-26T10:00:00Z",
                          "Metadata": {"invitation_id": "inv-1"}});
        assert_eq!(one(open).kind, EventKind::Ignored);
    }

    /// Postmark's documented subscription change record.
    fn subscription_change(suppress: bool, reason: &str) -> Value {
        json!({
            "RecordType": "SubscriptionChange", "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
            "ServerID": 123456, "MessageStream": "outbound", "ChangedAt": "2026-11-26T16:34:54Z",
            "Recipient": "ann@x.io", "Origin": "Recipient", "SuppressSending": suppress,
            "SuppressionReason": reason, "Tag": "my-tag", "Metadata": {"invitation_id": "inv-1"}
        })
    }

    #[test]
    fn a_subscription_change_that_suppresses_sending_is_acted_on_by_its_reason() {
        let cases = [
            (true, "HardBounce", EventKind::Bounced),
            (true, "SpamComplaint", EventKind::Complained),
            (true, "ManualSuppression", EventKind::Unsubscribed),
            (false, "ManualSuppression", EventKind::Ignored),
        ];
        for (suppress, reason, kind) in cases {
            let event = one(subscription_change(suppress, reason));
            assert_eq!(event.kind, kind, "{suppress} {reason}");
            assert_eq!(event.invitation_id.as_deref(), Some("inv-1"));
        }
        let bounce = one(bounce("HardBounce"));
        assert_ne!(
            one(subscription_change(true, "HardBounce")).event_id,
            bounce.event_id
        );
    }

    #[test]
    fn a_legacy_bounce_without_record_type_is_still_a_bounce() {
        let mut legacy = bounce("HardBounce");
        legacy.as_object_mut().unwrap().remove("RecordType");
        assert_eq!(one(legacy).kind, EventKind::Bounced);
    }

    #[test]
    fn the_event_id_is_the_same_for_a_retry_and_differs_between_events() {
        let first = one(bounce("HardBounce"));
        assert_eq!(first.event_id, one(bounce("HardBounce")).event_id);
        let mut later = bounce("HardBounce");
        later["BouncedAt"] = json!("2026-11-27T16:33:54Z");
        assert_ne!(first.event_id, one(later).event_id);
        let mut complaint = bounce("SpamComplaint");
        complaint["RecordType"] = json!("SpamComplaint");
        assert_ne!(first.event_id, one(complaint).event_id);
    }

    #[test]
    fn a_missing_invitation_id_is_none_and_bad_json_is_an_error() {
        let mut anonymous = bounce("HardBounce");
        anonymous.as_object_mut().unwrap().remove("Metadata");
        assert_eq!(one(anonymous).invitation_id, None);
        assert!(matches!(parse(b"{not json"), Err(ParseError::Json(_))));
        assert!(matches!(parse(b"[]"), Err(ParseError::Shape(_))));
    }
}
