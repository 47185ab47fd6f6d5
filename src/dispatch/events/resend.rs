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
#[path = "resend_tests.rs"]
mod tests;
