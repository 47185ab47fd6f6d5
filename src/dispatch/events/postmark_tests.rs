//! Tests of `postmark.rs`: the credentials check, and the records Postmark documents.

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
