//! Mailpit: one `/api/v1/send` per message, optional basic auth.

use serde_json::json;
use wiremock::matchers::{any, body_partial_json};
use wiremock::{Mock, MockServer, ResponseTemplate};

use bulk_invite::dispatch::provider::{BatchError, Outcome};
use bulk_invite::dispatch::providers::ProviderKind;

use crate::{
    answer_all, assert_a_hung_provider_is_retried, assert_batch_error, header, json, provider,
    requests, send_against, Expect, Fixture, CONFIG, FROM,
};

fn sent_as(id: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"ID": id}))
}

/// Makes `server` answer the message to `to` with `response`, ahead of
/// any catch-all answer.
async fn answer_for(server: &MockServer, to: &str, response: ResponseTemplate) {
    Mock::given(body_partial_json(json!({"To": [{"Email": to}]})))
        .respond_with(response)
        .with_priority(1)
        .mount(server)
        .await;
}

#[tokio::test]
async fn each_message_is_its_own_send_request_with_basic_auth_and_the_invitation_id() {
    let server = MockServer::start().await;
    answer_all(&server, sent_as("mp-id")).await;
    let fixture = Fixture::with(2);

    let outcomes = provider(ProviderKind::Mailpit, &server, Some("dev:s3cret"))
        .send(fixture.batch())
        .await
        .expect("sent");

    let sent = requests(&server).await;
    assert_eq!(sent.len(), 2);
    for (request, m) in sent.iter().zip(&fixture.messages) {
        assert_eq!(request.method.as_str(), "POST");
        assert_eq!(request.url.path(), "/api/v1/send");
        assert_eq!(header(request, "authorization"), "Basic ZGV2OnMzY3JldA==");
        assert_eq!(
            json(request),
            json!({
                "From": {"Email": FROM}, "To": [{"Email": m.to}], "Subject": m.subject,
                "Text": m.text, "HTML": m.html, "Tags": ["invitation"],
                "Headers": {"X-Invitation-Id": m.invitation_id},
            })
        );
    }
    let sent = Outcome::Sent {
        message_id: Some("mp-id".into()),
    };
    assert_eq!(outcomes, vec![sent.clone(), sent]);
}

#[tokio::test]
async fn without_a_key_no_authorization_header_is_sent() {
    let server = MockServer::start().await;
    answer_all(&server, sent_as("mp-id")).await;
    let fixture = Fixture::with(1);

    provider(ProviderKind::Mailpit, &server, None)
        .send(fixture.batch())
        .await
        .expect("sent");

    assert_eq!(header(&requests(&server).await[0], "authorization"), "");
}

#[tokio::test]
async fn a_message_mailpit_refuses_fails_alone_and_the_rest_are_sent() {
    let server = MockServer::start().await;
    answer_all(&server, sent_as("mp-id")).await;
    let refused = ResponseTemplate::new(400)
        .set_body_json(json!({"Error": "invalid To address: person2@example.com"}));
    answer_for(&server, "person2@example.com", refused).await;
    let fixture = Fixture::with(3);

    let outcomes = provider(ProviderKind::Mailpit, &server, None)
        .send(fixture.batch())
        .await
        .expect("sent");

    assert_eq!(outcomes.len(), 3);
    assert_eq!(
        outcomes[0],
        Outcome::Sent {
            message_id: Some("mp-id".into())
        }
    );
    assert!(
        matches!(&outcomes[1], Outcome::Failed { reason } if reason.contains("invalid To address")),
        "{:?}",
        outcomes[1]
    );
    assert_eq!(
        outcomes[2],
        Outcome::Sent {
            message_id: Some("mp-id".into())
        }
    );
}

#[tokio::test]
async fn a_failing_server_on_the_first_message_ends_the_batch_with_that_error() {
    let cases = [
        (
            "401",
            ResponseTemplate::new(401).set_body_string("Unauthorised."),
            CONFIG,
            "Unauthorised.",
        ),
        (
            "500",
            ResponseTemplate::new(500).set_body_json(json!({"Error": "database is locked"})),
            Expect::Retry(None),
            "database is locked",
        ),
    ];
    for (case, response, expected, mention) in cases {
        let result = send_against(ProviderKind::Mailpit, None, 3, response).await;
        assert_batch_error(case, result, expected, mention);
    }
}

#[tokio::test]
async fn a_server_failing_mid_batch_keeps_what_was_sent_and_retries_the_rest() {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(sent_as("mp-1"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    answer_all(
        &server,
        ResponseTemplate::new(503).insert_header("Retry-After", "4"),
    )
    .await;
    let fixture = Fixture::with(3);

    let outcomes = provider(ProviderKind::Mailpit, &server, None)
        .send(fixture.batch())
        .await;

    let outcomes = outcomes.expect("the sent message is kept");
    assert_eq!(
        outcomes[0],
        Outcome::Sent {
            message_id: Some("mp-1".into())
        }
    );
    for outcome in &outcomes[1..] {
        assert!(
            matches!(outcome, Outcome::Retry { after: Some(after), .. } if after.as_secs() == 4),
            "{outcome:?}"
        );
    }
    assert_eq!(outcomes.len(), 3);
    assert_eq!(
        requests(&server).await.len(),
        2,
        "no request after the failure"
    );
}

#[tokio::test]
async fn a_hung_mailpit_is_retried_after_the_timeout() {
    assert_a_hung_provider_is_retried(ProviderKind::Mailpit, None).await;
}

#[tokio::test]
async fn an_answer_without_an_id_is_retried() {
    let result = send_against(
        ProviderKind::Mailpit,
        None,
        1,
        ResponseTemplate::new(200).set_body_string("ok"),
    )
    .await;

    assert!(
        matches!(result, Err(BatchError::Retry { .. })),
        "{result:?}"
    );
}
