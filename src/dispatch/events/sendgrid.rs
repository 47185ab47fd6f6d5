//! SendGrid's signed Event Webhook. SendGrid signs the timestamp header
//! followed by the raw body with ECDSA over P-256 and SHA-256, and sends
//! the base64 DER signature in `X-Twilio-Email-Event-Webhook-Signature`
//! and the timestamp in `X-Twilio-Email-Event-Webhook-Timestamp`; the
//! verification key is the base64 DER public key (SubjectPublicKeyInfo)
//! shown in SendGrid's settings (a PEM block is accepted too). SendGrid
//! documents no timestamp tolerance; we apply the configured one, as for
//! Resend, so a captured request cannot be replayed later.
//!
//! SendGrid posts a JSON array of events. Each has `event` (`delivered`,
//! `bounce`, `spamreport`, `open`, ...), a unique `sg_event_id`, and our
//! custom argument `invitation_id` as a top-level key.
//!
//! SendGrid's documented events, and what each does here:
//!
//! - `delivered`: delivered.
//! - `bounce`: bounced and suppressed; but a `bounce` of `"type":
//!   "blocked"` is a temporary block by the receiving server, not a bad
//!   address, and is deliberately ignored.
//! - `spamreport`: complained and suppressed.
//! - `dropped`: "Dropped events occur when your message is not delivered by
//!   Twilio SendGrid. Dropped events are accompanied by a `reason` property
//!   [...] Reasons for a dropped message include: Invalid SMTPAPI header,
//!   Spam Content (if spam checker app enabled), Unsubscribed Address,
//!   Bounced Address, Spam Reporting Address, Invalid, Recipient List over
//!   Package Quota" (SendGrid's webhook API). Dropped for an address on
//!   SendGrid's lists (`Bounced Address`, `Unsubscribed Address`, `Spam
//!   Reporting Address`): failed, and suppressed here too; for any other
//!   reason (`Invalid`, ...): failed, with the reason.
//! - `unsubscribe`, `group_unsubscribe`: the recipient asked for no more
//!   mail; the address is suppressed, the invitation keeps its state.
//! - Deliberately ignored: `processed` (our record already says sent),
//!   `deferred` (SendGrid keeps trying; the outcome follows), `open` and
//!   `click` (not about delivery), `group_resubscribe` (lifting a
//!   suppression is an administrator's `DELETE /suppressions/{email}`).

use super::{
    check_timestamp, reason, stable_id, DeliveryEvent, EventKind, ParseError, VerifyError,
};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;
use serde_json::{Map, Value};

/// The header with the base64 DER signature.
pub const SIGNATURE: &str = "X-Twilio-Email-Event-Webhook-Signature";
/// The header with the signed timestamp, in seconds since the epoch.
pub const TIMESTAMP: &str = "X-Twilio-Email-Event-Webhook-Timestamp";

/// Checks SendGrid's signature of `timestamp + body` with the configured
/// public key, and that the timestamp is recent.
pub fn verify(
    signature: Option<&str>,
    timestamp: Option<&str>,
    body: &[u8],
    public_key: Option<&str>,
    tolerance_secs: i64,
    now: DateTime<Utc>,
) -> Result<(), VerifyError> {
    let key = verifying_key(public_key.ok_or(VerifyError::NotConfigured)?)?;
    let signature = signature.ok_or(VerifyError::Missing(SIGNATURE))?;
    let timestamp = timestamp.ok_or(VerifyError::Missing(TIMESTAMP))?;
    check_timestamp(TIMESTAMP, timestamp, now, tolerance_secs)?;
    let signature = STANDARD
        .decode(signature.trim())
        .ok()
        .and_then(|der| Signature::from_der(&der).ok())
        .ok_or(VerifyError::Malformed(SIGNATURE))?;
    let mut signed = Vec::with_capacity(timestamp.len() + body.len());
    signed.extend_from_slice(timestamp.as_bytes());
    signed.extend_from_slice(body);
    key.verify(&signed, &signature)
        .map_err(|_| VerifyError::BadSignature)
}

/// Reads the configured key: base64 DER, or a PEM block.
fn verifying_key(configured: &str) -> Result<VerifyingKey, VerifyError> {
    let configured = configured.trim();
    let key = match configured.starts_with("-----BEGIN") {
        true => VerifyingKey::from_public_key_pem(configured).ok(),
        false => STANDARD
            .decode(configured)
            .ok()
            .and_then(|der| VerifyingKey::from_public_key_der(&der).ok()),
    };
    key.ok_or(VerifyError::Misconfigured(
        "the public key is not a base64 DER or PEM P-256 key",
    ))
}

/// Reads the events of a SendGrid webhook post (a JSON array). An event
/// that is not an object, or lacks fields, is ignored rather than failing
/// the batch: SendGrid would post the whole batch again and again.
pub fn parse(body: &[u8]) -> Result<Vec<DeliveryEvent>, ParseError> {
    let value: Value = serde_json::from_slice(body)?;
    let Value::Array(events) = value else {
        return Err(ParseError::Shape("SendGrid array of events"));
    };
    let empty = Map::new();
    Ok(events
        .iter()
        .map(|event| read(event.as_object().unwrap_or(&empty)))
        .collect())
}

fn read(event: &Map<String, Value>) -> DeliveryEvent {
    let text = |name: &str| event.get(name).and_then(Value::as_str);
    let name = text("event").unwrap_or_default();
    let kind = match name {
        "delivered" => EventKind::Delivered,
        "bounce" if text("type") != Some("blocked") => EventKind::Bounced,
        "spamreport" => EventKind::Complained,
        "dropped" => match text("reason").map(str::trim) {
            Some("Bounced Address" | "Unsubscribed Address" | "Spam Reporting Address") => {
                EventKind::Suppressed
            }
            _ => EventKind::Failed,
        },
        "unsubscribe" | "group_unsubscribe" => EventKind::Unsubscribed,
        // The others, listed in the module's documentation.
        _ => EventKind::Ignored,
    };
    let event_id = match text("sg_event_id") {
        Some(id) => id.to_owned(),
        None => {
            let timestamp = event.get("timestamp").map(Value::to_string);
            stable_id(&[
                name,
                text("sg_message_id").unwrap_or_default(),
                timestamp.as_deref().unwrap_or_default(),
            ])
        }
    };
    DeliveryEvent {
        event_id,
        invitation_id: text("invitation_id").map(str::to_owned),
        kind,
        reason: match kind {
            EventKind::Bounced | EventKind::Suppressed | EventKind::Failed => {
                reason(text("reason"))
            }
            _ => None,
        },
    }
}

#[cfg(test)]
#[path = "sendgrid_tests.rs"]
mod tests;
