//! Resend: `/emails/batch` with a bearer key and the batch's idempotency key.

use serde_json::json;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

use bulk_invite::dispatch::provider::{BatchError, Outcome};
use bulk_invite::dispatch::providers::ProviderKind;

use bulk_invite::dispatch::provider::PauseCause;

use crate::{
    answer_all, assert_a_hung_provider_is_retried, assert_batch_error, header, json, provider,
    requests, secs, send_against, Expect, Fixture, CONFIG, FROM, IDEMPOTENCY_KEY,
};

const KEY: &str = "re_test_key";

fn error(status: u16, name: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .set_body_json(json!({"statusCode": status, "name": name, "message": message}))
}

fn created(ids: &[&str]) -> ResponseTemplate {
    let data: Vec<_> = ids.iter().map(|id| json!({"id": id})).collect();
    ResponseTemplate::new(200).set_body_json(json!({"data": data}))
}

async fn send(count: usize, response: ResponseTemplate) -> Result<Vec<Outcome>, BatchError> {
    send_against(ProviderKind::Resend, Some(KEY), count, response).await
}

#[tokio::test]
async fn a_batch_is_one_post_to_emails_batch_with_the_key_the_idempotency_key_and_tags() {
    let server = MockServer::start().await;
    answer_all(&server, created(&["re-1", "re-2"])).await;
    let fixture = Fixture::with(2);

    let outcomes = provider(ProviderKind::Resend, &server, Some(KEY))
        .send(fixture.batch())
        .await
        .expect("sent");

    let sent = requests(&server).await;
    assert_eq!(sent.len(), 1);
    let request = &sent[0];
    assert_eq!(request.method.as_str(), "POST");
    assert_eq!(request.url.path(), "/emails/batch");
    assert_eq!(header(request, "authorization"), format!("Bearer {KEY}"));
    assert_eq!(header(request, "idempotency-key"), IDEMPOTENCY_KEY);
    let expected: Vec<_> = fixture
        .messages
        .iter()
        .map(|m| {
            json!({
                "from": FROM, "to": [m.to], "subject": m.subject, "text": m.text, "html": m.html,
                "tags": [{"name": "invitation_id", "value": m.invitation_id}],
            })
        })
        .collect();
    assert_eq!(json(request), json!(expected));
    assert_eq!(
        outcomes,
        vec![
            Outcome::Sent {
                message_id: Some("re-1".into())
            },
            Outcome::Sent {
                message_id: Some("re-2".into())
            },
        ]
    );
}

#[tokio::test]
async fn a_retried_batch_sends_the_same_idempotency_key_again() {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(502))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    answer_all(&server, created(&["re-1"])).await;
    let fixture = Fixture::with(1);
    let resend = provider(ProviderKind::Resend, &server, Some(KEY));

    let first = resend.send(fixture.batch()).await;
    let second = resend.send(fixture.batch()).await;

    assert!(matches!(first, Err(BatchError::Retry { .. })), "{first:?}");
    assert_eq!(
        second,
        Ok(vec![Outcome::Sent {
            message_id: Some("re-1".into())
        }])
    );
    let keys: Vec<_> = requests(&server)
        .await
        .iter()
        .map(|r| header(r, "idempotency-key").to_owned())
        .collect();
    assert_eq!(keys, [IDEMPOTENCY_KEY, IDEMPOTENCY_KEY]);
}

#[tokio::test]
async fn error_answers_retry_pause_or_reject_the_batch() {
    let cases = [
        (
            "429 rate limit",
            error(429, "rate_limit_exceeded", "Too many requests.")
                .insert_header("retry-after", "2"),
            Expect::Paused(PauseCause::RateLimit, secs(2)),
            "rate_limit_exceeded",
        ),
        (
            "429 daily quota",
            error(
                429,
                "daily_quota_exceeded",
                "You have reached your daily email sending quota.",
            )
            .insert_header("ratelimit-reset", "3600"),
            Expect::Paused(PauseCause::Quota, secs(3600)),
            "daily_quota_exceeded",
        ),
        (
            "429 monthly quota",
            error(
                429,
                "monthly_quota_exceeded",
                "You have reached your monthly email sending quota.",
            ),
            Expect::Paused(PauseCause::Quota, None),
            "monthly_quota_exceeded",
        ),
        (
            "422 invalid from",
            error(
                422,
                "invalid_from_address",
                "Invalid `from` field. The email address needs to follow the `email@example.com` or `Name <email@example.com>` format.",
            ),
            CONFIG,
            "invalid_from_address",
        ),
        (
            "500",
            error(
                500,
                "internal_server_error",
                "An unexpected error occurred.",
            ),
            Expect::Retry(None),
            "500",
        ),
        (
            "401 missing key",
            error(
                401,
                "missing_api_key",
                "Missing API key in the authorization header.",
            ),
            CONFIG,
            "missing_api_key",
        ),
        (
            "403 invalid key",
            error(403, "invalid_api_key", "API key is invalid."),
            CONFIG,
            "invalid_api_key",
        ),
        (
            "403 unverified domain",
            error(
                403,
                "validation_error",
                "The acme.test domain is not verified.",
            ),
            CONFIG,
            "not verified",
        ),
        (
            "409 concurrent",
            error(
                409,
                "concurrent_idempotent_requests",
                "Same idempotency key used while original request is still in progress.",
            ),
            Expect::Unknown,
            "concurrent_idempotent_requests",
        ),
        (
            "409 different payload",
            error(
                409,
                "invalid_idempotent_request",
                "Same idempotency key used with a different request payload.",
            ),
            Expect::Unknown,
            "invalid_idempotent_request",
        ),
        (
            "422 validation",
            error(422, "validation_error", "Invalid `to` field."),
            Expect::Rejected,
            "Invalid `to` field.",
        ),
        (
            "400 validation",
            error(400, "validation_error", "The `from` field is required."),
            Expect::Rejected,
            "`from` field",
        ),
    ];
    for (case, response, expected, mention) in cases {
        assert_batch_error(case, send(2, response).await, expected, mention);
    }
}

#[tokio::test]
async fn an_accepted_answer_with_fewer_ids_than_messages_leaves_the_outcome_unknown() {
    assert_batch_error(
        "1 id for 2",
        send(2, created(&["re-1"])).await,
        Expect::Unknown,
        "1 ids and 0 errors for 2",
    );
}

#[tokio::test]
async fn an_entry_refused_in_permissive_mode_fails_alone() {
    // Resend, batch validation modes: "valid emails will be queued and
    // invalid emails will be returned in the `errors` array", e.g.
    // {"data": [{"id": ...}], "errors": [{"index": 1, "message": "..."}]}.
    let server = MockServer::start().await;
    let answer = json!({
        "data": [{"id": "re-1"}, {"id": "re-3"}],
        "errors": [{"index": 1, "message": "Invalid `to` field. The email address needs to follow the `email@example.com` or `Name <email@example.com>` format."}]
    });
    answer_all(&server, ResponseTemplate::new(200).set_body_json(answer)).await;
    let fixture = Fixture::with(3);

    let outcomes = provider(ProviderKind::Resend, &server, Some(KEY))
        .send(fixture.batch())
        .await
        .expect("outcomes");

    let sent = |id: &str| Outcome::Sent {
        message_id: Some(id.into()),
    };
    assert_eq!(outcomes[0], sent("re-1"));
    assert!(
        matches!(&outcomes[1], Outcome::Failed { reason } if reason.contains("Invalid `to` field")),
        "{:?}",
        outcomes[1]
    );
    assert_eq!(outcomes[2], sent("re-3"));
    let request = &requests(&server).await[0];
    assert_eq!(header(request, "x-batch-validation"), "permissive");
}

#[tokio::test]
async fn a_hung_resend_is_retried_after_the_timeout() {
    assert_a_hung_provider_is_retried(ProviderKind::Resend, Some(KEY)).await;
}
