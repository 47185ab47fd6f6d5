//! Tests of `sendgrid.rs`: ECDSA signatures, and the events SendGrid documents.

use super::*;
use chrono::TimeZone;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::SigningKey;
use p256::pkcs8::{EncodePublicKey, LineEnding};
use serde_json::json;

const BODY: &[u8] = br#"[{"event":"delivered","sg_event_id":"e1","invitation_id":"inv-1"}]"#;

struct Keys {
    signing: SigningKey,
    public_der: String,
}

fn keys() -> Keys {
    let signing = SigningKey::from_slice(&rand::random::<[u8; 32]>()).unwrap();
    let der = signing.verifying_key().to_public_key_der().unwrap();
    Keys {
        public_der: STANDARD.encode(der.as_bytes()),
        signing,
    }
}

fn sign(key: &SigningKey, timestamp: &str, body: &[u8]) -> String {
    let signature: Signature = key.sign(&[timestamp.as_bytes(), body].concat());
    STANDARD.encode(signature.to_der().as_bytes())
}

fn now() -> DateTime<Utc> {
    Utc.timestamp_opt(1_790_000_000, 0).unwrap()
}

#[test]
fn a_signature_by_the_configured_key_is_accepted() {
    let keys = keys();
    let signature = sign(&keys.signing, "1790000000", BODY);
    let check = |key: &str| {
        verify(
            Some(&signature),
            Some("1790000000"),
            BODY,
            Some(key),
            300,
            now(),
        )
    };
    assert_eq!(check(&keys.public_der), Ok(()));
    let pem = keys
        .signing
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    assert_eq!(check(&pem), Ok(()));
}

#[test]
fn a_signature_of_anything_else_or_by_another_key_is_refused() {
    let keys = keys();
    let other = self::keys();
    let cases = [
        (sign(&other.signing, "1790000000", BODY), BODY),
        (sign(&keys.signing, "1790000001", BODY), BODY),
        (sign(&keys.signing, "1790000000", b"[]"), BODY),
        (
            sign(&keys.signing, "1790000000", BODY),
            &BODY[..BODY.len() - 1],
        ),
    ];
    for (signature, body) in cases {
        assert_eq!(
            verify(
                Some(&signature),
                Some("1790000000"),
                body,
                Some(&keys.public_der),
                300,
                now()
            ),
            Err(VerifyError::BadSignature)
        );
    }
}

#[test]
fn a_stale_timestamp_missing_headers_or_garbage_are_refused() {
    let keys = keys();
    let key = Some(keys.public_der.as_str());
    let stale = sign(&keys.signing, "1789999000", BODY);
    let good = sign(&keys.signing, "1790000000", BODY);
    let cases = [
        (
            Some(stale.as_str()),
            Some("1789999000"),
            VerifyError::StaleTimestamp,
        ),
        (None, Some("1790000000"), VerifyError::Missing(SIGNATURE)),
        (Some(good.as_str()), None, VerifyError::Missing(TIMESTAMP)),
        (
            Some("bm90IGEgc2lnbmF0dXJl"),
            Some("1790000000"),
            VerifyError::Malformed(SIGNATURE),
        ),
        (
            Some("%%%"),
            Some("1790000000"),
            VerifyError::Malformed(SIGNATURE),
        ),
    ];
    for (signature, timestamp, expected) in cases {
        assert_eq!(
            verify(signature, timestamp, BODY, key, 300, now()),
            Err(expected.clone()),
            "{expected:?}"
        );
    }
}

#[test]
fn an_unset_or_unreadable_key_accepts_nothing() {
    let keys = keys();
    let signature = sign(&keys.signing, "1790000000", BODY);
    let check = |key| verify(Some(&signature), Some("1790000000"), BODY, key, 300, now());
    assert_eq!(check(None), Err(VerifyError::NotConfigured));
    assert!(matches!(
        check(Some("bm90IGEga2V5")),
        Err(VerifyError::Misconfigured(_))
    ));
}

#[test]
fn a_batch_maps_each_event_to_its_kind() {
    let batch = json!([
        {"email": "ann@x.io", "timestamp": 1790000000, "event": "delivered", "sg_event_id": "e1",
         "sg_message_id": "m1.filter0001", "response": "250 OK", "invitation_id": "inv-1"},
        {"email": "bob@x.io", "timestamp": 1790000000, "event": "bounce", "type": "bounce",
         "sg_event_id": "e2", "reason": "550 5.1.1 unknown user", "status": "5.1.1", "invitation_id": "inv-2"},
        {"email": "cy@x.io", "event": "bounce", "type": "blocked", "sg_event_id": "e3", "invitation_id": "inv-3"},
        {"email": "di@x.io", "event": "spamreport", "sg_event_id": "e4", "invitation_id": "inv-4"},
        {"email": "ann@x.io", "event": "open", "sg_event_id": "e5", "invitation_id": "inv-1"},
        {"email": "ed@x.io", "event": "dropped", "reason": "Bounced Address", "sg_event_id": "e6"},
        "not an event",
        {"email": "fy@x.io", "event": "dropped", "reason": "Unsubscribed Address", "sg_event_id": "e8"},
        {"email": "gu@x.io", "event": "dropped", "reason": "Spam Reporting Address", "sg_event_id": "e9"},
        {"email": "ha@x.io", "event": "dropped", "reason": "Invalid", "sg_event_id": "e10"},
        {"email": "ig@x.io", "event": "unsubscribe", "sg_event_id": "e11"},
        {"email": "jo@x.io", "event": "deferred", "response": "400 try again later", "sg_event_id": "e12"},
        {"email": "ka@x.io", "event": "processed", "sg_event_id": "e13"}
    ]);
    let events = parse(batch.to_string().as_bytes()).unwrap();
    let kinds: Vec<EventKind> = events.iter().map(|e| e.kind).collect();
    use EventKind::*;
    assert_eq!(
        kinds,
        [
            Delivered,
            Bounced,
            Ignored,
            Complained,
            Ignored,
            Suppressed,
            Ignored,
            Suppressed,
            Suppressed,
            Failed,
            Unsubscribed,
            Ignored,
            Ignored
        ]
    );
    assert_eq!(events[5].reason.as_deref(), Some("Bounced Address"));
    assert_eq!(events[9].reason.as_deref(), Some("Invalid"));
    assert_eq!(events[1].event_id, "e2");
    assert_eq!(events[1].invitation_id.as_deref(), Some("inv-2"));
    assert_eq!(events[1].reason.as_deref(), Some("550 5.1.1 unknown user"));
    assert_eq!(events[5].invitation_id, None);
}

#[test]
fn an_event_without_an_id_gets_a_stable_one() {
    let body = br#"[{"event":"delivered","sg_message_id":"m1","timestamp":1790000000}]"#;
    let first = parse(body).unwrap();
    assert_eq!(first, parse(body).unwrap());
    let later = br#"[{"event":"delivered","sg_message_id":"m1","timestamp":1790000001}]"#;
    assert_ne!(first[0].event_id, parse(later).unwrap()[0].event_id);
}

#[test]
fn a_body_that_is_not_an_array_is_an_error() {
    assert!(matches!(
        parse(b"{\"event\":\"delivered\"}"),
        Err(ParseError::Shape(_))
    ));
    assert!(matches!(parse(b"[{"), Err(ParseError::Json(_))));
}
