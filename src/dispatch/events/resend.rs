//! Resend's webhooks, delivered and signed by Svix. The signed content is
//! `{svix-id}.{svix-timestamp}.{raw body}`, signed with HMAC-SHA256 under
//! the signing secret (`whsec_` followed by the base64 key); `svix-signature`
//! holds space-separated `v1,<base64 signature>` entries (several while a
//! secret is rotated), one of which must match. A timestamp further than the
//! tolerance from our clock, in either direction, is refused, so a captured
//! request cannot be replayed later. `svix-id` is the same when Svix
//! retries a message, so it is the event's id.
//!
//! Resend posts one event per request: `{"type": "email.delivered",
//! "created_at": ..., "data": {"email_id": ..., "tags": ..., ...}}`. Our
//! messages carry the tag `invitation_id`; Resend shows tags either as
//! `[{"name": ..., "value": ...}]` or as an object `{"name": "value"}`, and
//! both are read.
//!
//! Resend's documented email events, and what each does here (the quotes
//! are Resend's OpenAPI descriptions):
//!
//! - `email.delivered`: delivered.
//! - `email.bounced`: of `bounce.type` `Permanent`, bounced and suppressed;
//!   `Undetermined`, bounced but not suppressed (the provider cannot tell
//!   whether it is for good); `Transient`, ignored (Resend keeps trying and
//!   reports the outcome).
//! - `email.complained`: complained and suppressed.
//! - `email.suppressed`, "Occurs whenever the email is suppressed by
//!   Resend, such as when the recipient's address is on the account-level
//!   suppression list": failed, with `suppressed.message` as the reason,
//!   and suppressed here too.
//! - `email.failed`, "Occurs whenever the email failed to send due to an
//!   error such as invalid recipients, API key problems, domain
//!   verification issues, email quota limits, or other sending failures":
//!   failed, with `failed.reason` as the reason (it can be re-sent).
//! - Deliberately ignored: `email.sent` and `email.scheduled` (our own
//!   record already says sent), `email.delivery_delayed` (Resend keeps
//!   trying; the outcome follows), `email.opened` and `email.clicked` (not
//!   about delivery), `email.received` (inbound mail), and the `contact.*`
//!   and `domain.*` events (not about a message).

use super::{check_timestamp, reason, DeliveryEvent, EventKind, ParseError, VerifyError};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha256;

/// The header with the message id.
pub const ID: &str = "svix-id";
/// The header with the signing time, in seconds since the epoch.
pub const TIMESTAMP: &str = "svix-timestamp";
/// The header with the signatures.
pub const SIGNATURE: &str = "svix-signature";
/// The tag our messages carry the invitation id in.
const TAG: &str = "invitation_id";

/// The Svix headers of a request, as sent.
#[derive(Debug, Clone, Copy, Default)]
pub struct SvixHeaders<'a> {
    /// `svix-id`.
    pub id: Option<&'a str>,
    /// `svix-timestamp`.
    pub timestamp: Option<&'a str>,
    /// `svix-signature`.
    pub signature: Option<&'a str>,
}

/// Checks the Svix signature of `body` with the configured signing secret,
/// and that the signature is recent.
pub fn verify(
    headers: SvixHeaders<'_>,
    body: &[u8],
    secret: Option<&str>,
    tolerance_secs: i64,
    now: DateTime<Utc>,
) -> Result<(), VerifyError> {
    let secret = secret.ok_or(VerifyError::NotConfigured)?;
    let key = STANDARD
        .decode(secret.trim().trim_start_matches("whsec_"))
        .ok()
        .filter(|key| !key.is_empty())
        .ok_or(VerifyError::Misconfigured(
            "the secret is not whsec_ and base64",
        ))?;
    let id = headers.id.ok_or(VerifyError::Missing(ID))?;
    let timestamp = headers.timestamp.ok_or(VerifyError::Missing(TIMESTAMP))?;
    let signatures = headers.signature.ok_or(VerifyError::Missing(SIGNATURE))?;
    check_timestamp(TIMESTAMP, timestamp, now, tolerance_secs)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key)
        .map_err(|_| VerifyError::Misconfigured("the secret is not a valid key"))?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    let matches = signatures
        .split_whitespace()
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|signature| STANDARD.decode(signature).ok())
        .any(|signature| mac.clone().verify_slice(&signature).is_ok());
    match matches {
        true => Ok(()),
        false => Err(VerifyError::BadSignature),
    }
}

/// A Resend webhook event.
#[derive(Debug, Deserialize)]
struct Event {
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    data: Data,
}

#[derive(Debug, Default, Deserialize)]
struct Data {
    tags: Option<Value>,
    bounce: Option<Bounce>,
    suppressed: Option<Suppressed>,
    failed: Option<Failed>,
}

#[derive(Debug, Deserialize)]
struct Suppressed {
    message: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Failed {
    reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Bounce {
    message: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// Reads the one event of a Resend webhook post; `event_id` is its
/// `svix-id`.
pub fn parse(body: &[u8], event_id: &str) -> Result<Vec<DeliveryEvent>, ParseError> {
    let value: Value = serde_json::from_slice(body)?;
    if !value.is_object() {
        return Err(ParseError::Shape("Resend webhook object"));
    }
    let event: Event = serde_json::from_value(value)?;
    let bounce = event.data.bounce.as_ref();
    let kind = match event.kind.as_deref() {
        Some("email.delivered") => EventKind::Delivered,
        Some("email.complained") => EventKind::Complained,
        Some("email.bounced") => match bounce.and_then(|b| b.kind.as_deref()) {
            None | Some("Permanent") => EventKind::Bounced,
            Some("Undetermined") => EventKind::BouncedUndetermined,
            Some(_) => EventKind::Ignored,
        },
        Some("email.suppressed") => EventKind::Suppressed,
        Some("email.failed") => EventKind::Failed,
        // The others, listed in the module's documentation.
        _ => EventKind::Ignored,
    };
    let data = &event.data;
    let reason = match kind {
        EventKind::Bounced | EventKind::BouncedUndetermined => {
            reason(bounce.and_then(|b| b.message.as_deref()))
        }
        EventKind::Suppressed => {
            reason(data.suppressed.as_ref().and_then(|s| s.message.as_deref()))
        }
        EventKind::Failed => reason(data.failed.as_ref().and_then(|f| f.reason.as_deref())),
        _ => None,
    };
    Ok(vec![DeliveryEvent {
        event_id: event_id.to_owned(),
        invitation_id: event.data.tags.as_ref().and_then(invitation_tag),
        kind,
        reason,
    }])
}

/// The invitation id among the tags, in either of Resend's forms.
fn invitation_tag(tags: &Value) -> Option<String> {
    let value = match tags {
        Value::Array(tags) => tags
            .iter()
            .find(|tag| tag.get("name").and_then(Value::as_str) == Some(TAG))
            .and_then(|tag| tag.get("value")),
        Value::Object(tags) => tags.get(TAG),
        _ => None,
    };
    value.and_then(Value::as_str).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const BODY: &[u8] = br#"{"type":"email.delivered","data":{"tags":{"invitation_id":"inv-1"}}}"#;

    fn sign(secret: &str, id: &str, timestamp: &str, body: &[u8]) -> String {
        let key = STANDARD
            .decode(secret.trim_start_matches("whsec_"))
            .unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        mac.update(format!("{id}.{timestamp}.").as_bytes());
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }

    fn now() -> DateTime<Utc> {
        Utc.timestamp_opt(1_790_000_000, 0).unwrap()
    }

    fn check(id: &str, timestamp: &str, signature: &str, body: &[u8]) -> Result<(), VerifyError> {
        let headers = SvixHeaders {
            id: Some(id),
            timestamp: Some(timestamp),
            signature: Some(signature),
        };
        verify(headers, body, Some(SECRET), 300, now())
    }

    #[test]
    fn a_signature_made_with_the_secret_is_accepted() {
        let signature = sign(SECRET, "msg_1", "1790000000", BODY);
        assert_eq!(check("msg_1", "1790000000", &signature, BODY), Ok(()));
        // One matching entry among several (a secret being rotated) is enough.
        let rotated = format!("v1,bm90IGl0 v2,abc {signature}");
        assert_eq!(check("msg_1", "1790000000", &rotated, BODY), Ok(()));
    }

    #[test]
    fn a_signature_of_anything_else_is_refused() {
        let other_secret = "whsec_c2VjcmV0LW9mLWFub3RoZXItZW5kcG9pbnQ=";
        let good = sign(SECRET, "msg_1", "1790000000", BODY);
        let cases = [
            sign(other_secret, "msg_1", "1790000000", BODY),
            sign(SECRET, "msg_2", "1790000000", BODY),
            sign(SECRET, "msg_1", "1790000001", BODY),
            sign(SECRET, "msg_1", "1790000000", b"{}"),
            good.replacen("v1,", "v2,", 1),
            good.replacen("v1,", "", 1),
            "v1,not-base64!".into(),
            String::new(),
        ];
        for signature in cases {
            assert_eq!(
                check("msg_1", "1790000000", &signature, BODY),
                Err(VerifyError::BadSignature),
                "{signature}"
            );
        }
    }

    #[test]
    fn a_stale_or_future_timestamp_is_refused_even_when_signed() {
        for timestamp in ["1789999699", "1790000301"] {
            let signature = sign(SECRET, "msg_1", timestamp, BODY);
            assert_eq!(
                check("msg_1", timestamp, &signature, BODY),
                Err(VerifyError::StaleTimestamp)
            );
        }
    }

    #[test]
    fn missing_headers_or_secret_are_refused() {
        let signature = sign(SECRET, "msg_1", "1790000000", BODY);
        let full = SvixHeaders {
            id: Some("msg_1"),
            timestamp: Some("1790000000"),
            signature: Some(&signature),
        };
        let cases = [
            (SvixHeaders { id: None, ..full }, VerifyError::Missing(ID)),
            (
                SvixHeaders {
                    timestamp: None,
                    ..full
                },
                VerifyError::Missing(TIMESTAMP),
            ),
            (
                SvixHeaders {
                    signature: None,
                    ..full
                },
                VerifyError::Missing(SIGNATURE),
            ),
        ];
        for (headers, expected) in cases {
            assert_eq!(
                verify(headers, BODY, Some(SECRET), 300, now()),
                Err(expected)
            );
        }
        assert_eq!(
            verify(full, BODY, None, 300, now()),
            Err(VerifyError::NotConfigured)
        );
        assert!(matches!(
            verify(full, BODY, Some("whsec_***"), 300, now()),
            Err(VerifyError::Misconfigured(_))
        ));
        assert!(matches!(
            verify(full, BODY, Some("whsec_"), 300, now()),
            Err(VerifyError::Misconfigured(_))
        ));
    }

    fn one(payload: Value) -> DeliveryEvent {
        let mut events = parse(payload.to_string().as_bytes(), "msg_1").unwrap();
        assert_eq!(events.len(), 1);
        events.remove(0)
    }

    fn event(kind: &str, extra: Value) -> Value {
        let mut data = json!({
            "created_at": "2026-11-26T23:41:11.894719+00:00",
            "email_id": "56761188-7520-42d8-8898-ff6fc54ce618",
            "from": "Acme <invites@acme.test>", "to": ["ann@x.io"], "subject": "Join Acme",
            "tags": [{"name": "invitation_id", "value": "inv-1"}]
        });
        for (k, v) in extra.as_object().unwrap() {
            data[k] = v.clone();
        }
        json!({"type": kind, "created_at": "2026-11-26T23:41:12.126Z", "data": data})
    }

    #[test]
    fn events_map_to_kinds_and_carry_the_svix_id() {
        let permanent = json!({"bounce": {"message": "The recipient's address does not exist.",
                                          "subType": "General", "type": "Permanent"}});
        let transient = json!({"bounce": {"message": "Mailbox full", "subType": "MailboxFull",
                                          "type": "Transient"}});
        let undetermined = json!({"bounce": {"message": "The bounce could not be classified.",
                                             "subType": "Undetermined", "type": "Undetermined"}});
        let cases = [
            (event("email.delivered", json!({})), EventKind::Delivered),
            (event("email.bounced", permanent), EventKind::Bounced),
            (event("email.bounced", json!({})), EventKind::Bounced),
            (event("email.bounced", transient), EventKind::Ignored),
            (
                event("email.bounced", undetermined),
                EventKind::BouncedUndetermined,
            ),
            (
                event("email.suppressed", suppressed()),
                EventKind::Suppressed,
            ),
            (event("email.failed", failed()), EventKind::Failed),
            (event("email.sent", json!({})), EventKind::Ignored),
            (event("email.scheduled", json!({})), EventKind::Ignored),
            (event("email.clicked", json!({})), EventKind::Ignored),
            (event("email.complained", json!({})), EventKind::Complained),
            (event("email.opened", json!({})), EventKind::Ignored),
            (
                event("email.delivery_delayed", json!({})),
                EventKind::Ignored,
            ),
            (
                json!({"type": "contact.created", "data": {"id": "c"}}),
                EventKind::Ignored,
            ),
        ];
        for (payload, kind) in cases {
            let parsed = one(payload.clone());
            assert_eq!(parsed.kind, kind, "{payload}");
            assert_eq!(parsed.event_id, "msg_1");
        }
    }

    /// `WebhookEventSuppressed` of Resend's OpenAPI document: `type` is
    /// `Suppressed` or `OnAccountSuppressionList`, `reason`
    /// `previous_bounce` or `previous_complaint`.
    fn suppressed() -> Value {
        json!({"suppressed": {"diagnosticCode": [],
            "message": "The recipient is on the account-level suppression list.",
            "reason": "previous_bounce", "type": "OnAccountSuppressionList"}})
    }

    /// `WebhookEventFailed`: "Reason for the email failure (e.g.,
    /// `reached_daily_quota`)".
    fn failed() -> Value {
        json!({"failed": {"reason": "reached_daily_quota"}})
    }

    #[test]
    fn suppressed_and_failed_events_keep_their_explanation() {
        let suppressed = one(event("email.suppressed", suppressed()));
        assert_eq!(
            suppressed.reason.as_deref(),
            Some("The recipient is on the account-level suppression list.")
        );
        let failed = one(event("email.failed", failed()));
        assert_eq!(failed.reason.as_deref(), Some("reached_daily_quota"));
    }

    #[test]
    fn a_bounce_keeps_its_message_as_the_reason() {
        let bounced = one(event(
            "email.bounced",
            json!({"bounce": {"message": "550 no such user", "type": "Permanent"}}),
        ));
        assert_eq!(bounced.reason.as_deref(), Some("550 no such user"));
    }

    #[test]
    fn the_invitation_tag_is_read_from_an_array_or_an_object() {
        let array = one(event("email.delivered", json!({})));
        assert_eq!(array.invitation_id.as_deref(), Some("inv-1"));
        let object = one(event(
            "email.delivered",
            json!({"tags": {"category": "invite", "invitation_id": "inv-2"}}),
        ));
        assert_eq!(object.invitation_id.as_deref(), Some("inv-2"));
        let none = one(event(
            "email.delivered",
            json!({"tags": {"category": "invite"}}),
        ));
        assert_eq!(none.invitation_id, None);
    }

    #[test]
    fn a_body_that_is_not_an_event_object_is_an_error() {
        assert!(matches!(parse(b"nope", "msg_1"), Err(ParseError::Json(_))));
        assert!(matches!(parse(b"[1]", "msg_1"), Err(ParseError::Shape(_))));
    }
}
