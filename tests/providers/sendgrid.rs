//! SendGrid: one `/v3/mail/send` per batch, one personalization per message.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;
use wiremock::{MockServer, ResponseTemplate};

use bulk_invite::dispatch::provider::{BatchError, Outcome};
use bulk_invite::dispatch::providers::ProviderKind;

use bulk_invite::dispatch::provider::PauseCause;

use crate::{
    answer_all, assert_a_hung_provider_is_retried, assert_batch_error, header, json, provider,
    requests, secs, send_against, Expect, Fixture, CONFIG, FROM,
};

const KEY: &str = "SG.test-key";

async fn send(count: usize, response: ResponseTemplate) -> Result<Vec<Outcome>, BatchError> {
    send_against(ProviderKind::Sendgrid, Some(KEY), count, response).await
}

#[tokio::test]
async fn a_batch_is_one_mail_send_with_a_personalization_per_invitation() {
    let server = MockServer::start().await;
    answer_all(
        &server,
        ResponseTemplate::new(202).insert_header("X-Message-Id", "sg-abc"),
    )
    .await;
    let fixture = Fixture::with(2);

    let outcomes = provider(ProviderKind::Sendgrid, &server, Some(KEY))
        .send(fixture.batch())
        .await
        .expect("sent");

    let sent = requests(&server).await;
    assert_eq!(sent.len(), 1);
    let request = &sent[0];
    assert_eq!(request.method.as_str(), "POST");
    assert_eq!(request.url.path(), "/v3/mail/send");
    assert_eq!(header(request, "authorization"), format!("Bearer {KEY}"));
    let personalizations: Vec<_> = fixture
        .messages
        .iter()
        .map(|m| {
            json!({
                "to": [{"email": m.to}],
                "custom_args": {"invitation_id": m.invitation_id},
                "substitutions": {"-name-": m.substitutions["name"], "-link-": m.substitutions["link"]},
            })
        })
        .collect();
    assert_eq!(
        json(request),
        json!({
            "personalizations": personalizations,
            "from": {"email": FROM},
            "subject": fixture.shared.subject,
            "content": [
                {"type": "text/plain", "value": "Hello -name-, accept: -link-"},
                {"type": "text/html", "value": "<p>Hello -name-, <a href=\"-link-\">accept</a></p>"},
            ],
        })
    );
    let sent = Outcome::Sent {
        message_id: Some("sg-abc".into()),
    };
    assert_eq!(outcomes, vec![sent.clone(), sent]);
}

#[tokio::test]
async fn a_rate_limited_batch_waits_until_the_reset_time() {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let response = ResponseTemplate::new(429)
        .insert_header("X-RateLimit-Reset", (now + 60).to_string().as_str())
        .set_body_json(json!({"errors": [{"message": "too many requests", "field": null}]}));

    let result = send(2, response).await;

    match result {
        Err(BatchError::Paused {
            after: Some(after),
            reason,
            cause: PauseCause::RateLimit,
        }) => {
            assert!(
                after > Duration::from_secs(55) && after <= Duration::from_secs(60),
                "{after:?}"
            );
            assert!(reason.contains("too many requests"), "{reason}");
        }
        other => panic!("expected a retry with a wait, got {other:?}"),
    }
}

#[tokio::test]
async fn error_answers_retry_pause_or_reject_the_batch() {
    let errors = |messages: &[&str]| {
        let items: Vec<_> = messages
            .iter()
            .map(|m| json!({"message": m, "field": "x", "help": null}))
            .collect();
        json!({"errors": items})
    };
    let cases = [
        (
            "429 with Retry-After",
            ResponseTemplate::new(429).insert_header("Retry-After", "30"),
            Expect::Paused(PauseCause::RateLimit, secs(30)),
            "429",
        ),
        (
            "500",
            ResponseTemplate::new(500).set_body_string("oops"),
            Expect::Retry(None),
            "oops",
        ),
        (
            "401",
            ResponseTemplate::new(401).set_body_json(errors(&[
                "The provided authorization grant is invalid, expired, or revoked",
            ])),
            CONFIG,
            "authorization grant",
        ),
        (
            "403",
            ResponseTemplate::new(403).set_body_json(errors(&[
                "The from address does not match a verified Sender Identity.",
            ])),
            CONFIG,
            "Sender Identity",
        ),
        (
            "400",
            ResponseTemplate::new(400).set_body_json(errors(&[
                "Invalid type.",
                "Does not contain a valid address.",
            ])),
            Expect::Rejected,
            "Invalid type.; Does not contain a valid address.",
        ),
        (
            "413",
            ResponseTemplate::new(413).set_body_json(errors(&["Payload too large."])),
            Expect::TooLarge,
            "Payload too large.",
        ),
    ];
    for (case, response, expected, mention) in cases {
        assert_batch_error(case, send(2, response).await, expected, mention);
    }
}

#[tokio::test]
async fn an_accepted_batch_without_a_message_id_is_still_sent() {
    let outcomes = send(1, ResponseTemplate::new(202)).await.expect("sent");

    assert_eq!(outcomes, vec![Outcome::Sent { message_id: None }]);
}

#[tokio::test]
async fn a_hung_sendgrid_is_retried_after_the_timeout() {
    assert_a_hung_provider_is_retried(ProviderKind::Sendgrid, Some(KEY)).await;
}

#[tokio::test]
async fn a_400_naming_one_recipient_fails_only_that_one() {
    // SendGrid, mail send errors: 400 with {"errors": [{"message": ...,
    // "field": "personalizations.1.to.0.email", "help": ...}]}.
    let response = ResponseTemplate::new(400).set_body_json(json!({"errors": [{
        "message": "Does not contain a valid address.",
        "field": "personalizations.1.to.0.email",
        "help": "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html#message.personalizations.to"
    }]}));

    let outcomes = send(3, response).await.expect("outcomes per recipient");

    assert_eq!(outcomes[0], Outcome::Unsent);
    assert!(
        matches!(&outcomes[1], Outcome::Failed { reason } if reason.contains("Does not contain a valid address.")),
        "{:?}",
        outcomes[1]
    );
    assert_eq!(outcomes[2], Outcome::Unsent);
}
