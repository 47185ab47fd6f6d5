//! Tests of `resend.rs`: Svix signatures, and the events Resend documents.

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
