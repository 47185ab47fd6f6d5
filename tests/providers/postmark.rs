//! Postmark: `/email/batch`, per-message error codes, account-level 422s.

use serde_json::json;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use bulk_invite::dispatch::provider::Outcome;
use bulk_invite::dispatch::providers::ProviderKind;

use bulk_invite::dispatch::provider::PauseCause;

use crate::{
    answer_all, assert_a_hung_provider_is_retried, assert_batch_error, header, json, provider,
    requests, secs, send_against, Expect, Fixture, BATCH_ID, CONFIG, FROM,
};

const TOKEN: &str = "pm-server-token";

fn ok(id: &str) -> serde_json::Value {
    json!({"ErrorCode": 0, "Message": "OK", "MessageID": id, "To": "x", "SubmittedAt": "2026-11-24T19:00:00Z"})
}

fn refused(code: i64, message: &str) -> serde_json::Value {
    json!({"ErrorCode": code, "Message": message})
}

async fn send(
    count: usize,
    response: ResponseTemplate,
) -> Result<Vec<Outcome>, bulk_invite::dispatch::provider::BatchError> {
    send_against(ProviderKind::Postmark, Some(TOKEN), count, response).await
}

#[tokio::test]
async fn a_batch_is_one_post_to_email_batch_with_the_token_and_each_invitation_id() {
    let server = MockServer::start().await;
    answer_all(
        &server,
        ResponseTemplate::new(200).set_body_json(json!([ok("pm-1"), ok("pm-2")])),
    )
    .await;
    let fixture = Fixture::with(2);

    let outcomes = provider(ProviderKind::Postmark, &server, Some(TOKEN))
        .send(fixture.batch())
        .await
        .expect("sent");

    let sent = requests(&server).await;
    assert_eq!(sent.len(), 1);
    let request = &sent[0];
    assert_eq!(request.method.as_str(), "POST");
    assert_eq!(request.url.path(), "/email/batch");
    assert_eq!(header(request, "x-postmark-server-token"), TOKEN);
    assert_eq!(header(request, "accept"), "application/json");
    assert_eq!(header(request, "content-type"), "application/json");
    let expected: Vec<_> = fixture
        .messages
        .iter()
        .map(|m| {
            json!({
                "From": FROM, "To": m.to, "Subject": m.subject, "TextBody": m.text,
                "HtmlBody": m.html, "MessageStream": "outbound", "Tag": "invitation",
                "Metadata": {"invitation_id": m.invitation_id, "batch": BATCH_ID},
            })
        })
        .collect();
    assert_eq!(json(request), json!(expected));
    assert_eq!(
        outcomes,
        vec![
            Outcome::Sent {
                message_id: Some("pm-1".into())
            },
            Outcome::Sent {
                message_id: Some("pm-2".into())
            },
        ]
    );
}

#[tokio::test]
async fn per_message_results_are_matched_by_position() {
    let answer = json!([
        ok("pm-1"),
        refused(
            406,
            "You tried to send to recipient(s) that have been marked as inactive."
        ),
        refused(300, "Invalid 'To' address: 'person3@example'."),
        refused(1000, "Something odd happened."),
    ]);

    let outcomes = send(4, ResponseTemplate::new(200).set_body_json(answer))
        .await
        .expect("sent");

    assert_eq!(outcomes.len(), 4);
    assert_eq!(
        outcomes[0],
        Outcome::Sent {
            message_id: Some("pm-1".into())
        }
    );
    assert!(
        matches!(&outcomes[1], Outcome::Failed { reason } if reason.contains("406") && reason.contains("inactive")),
        "{:?}",
        outcomes[1]
    );
    assert!(
        matches!(&outcomes[2], Outcome::Failed { reason } if reason.contains("Invalid 'To'")),
        "{:?}",
        outcomes[2]
    );
    assert!(
        matches!(&outcomes[3], Outcome::Retry { reason, after: None } if reason.contains("1000")),
        "{:?}",
        outcomes[3]
    );
}

#[tokio::test]
async fn a_batch_refused_entirely_for_an_account_reason_pauses_sending() {
    let answer = json!([
        refused(412, "Your account is pending approval."),
        refused(412, "Your account is pending approval."),
    ]);

    let result = send(2, ResponseTemplate::new(200).set_body_json(answer)).await;

    assert_batch_error("412 on every message", result, CONFIG, "pending approval");
}

#[tokio::test]
async fn a_batch_refused_entirely_for_the_rate_limit_pauses_without_an_attempt() {
    // Postmark API errors: "429 — Rate limit exceeded".
    let answer = json!([
        refused(429, "Rate limit exceeded."),
        refused(429, "Rate limit exceeded."),
    ]);

    let result = send(2, ResponseTemplate::new(200).set_body_json(answer)).await;

    assert_batch_error(
        "429 on every message",
        result,
        Expect::Paused(PauseCause::RateLimit, None),
        "Rate limit exceeded.",
    );
}

#[tokio::test]
async fn an_accepted_answer_that_does_not_match_the_batch_leaves_the_outcome_unknown() {
    let cases = [
        (
            "one result for two messages",
            ResponseTemplate::new(200).set_body_json(json!([ok("pm-1")])),
            "1 results for 2",
        ),
        (
            "not a list",
            ResponseTemplate::new(200).set_body_string("<html>proxy</html>"),
            "not a list",
        ),
    ];
    for (case, response, mention) in cases {
        assert_batch_error(case, send(2, response).await, Expect::Unknown, mention);
    }
}

#[tokio::test]
async fn request_level_errors_retry_pause_or_reject_the_batch() {
    let cases = [
        (
            "401 bad token",
            ResponseTemplate::new(401)
                .set_body_json(refused(10, "Bad or missing server or user API token.")),
            CONFIG,
            "401",
        ),
        (
            "422 code 10",
            ResponseTemplate::new(422)
                .set_body_json(refused(10, "Bad or missing server or user API token.")),
            CONFIG,
            "error 10",
        ),
        (
            "422 code 412",
            ResponseTemplate::new(422).set_body_json(refused(412, "Account pending approval.")),
            CONFIG,
            "error 412",
        ),
        (
            "422 code 413",
            ResponseTemplate::new(422).set_body_json(refused(413, "Account may not send.")),
            CONFIG,
            "error 413",
        ),
        (
            "422 code 401",
            ResponseTemplate::new(422)
                .set_body_json(refused(401, "Sender signature not confirmed.")),
            CONFIG,
            "not confirmed",
        ),
        (
            // "300 Invalid email request ... Invalid 'From' address" (Postmark, API error codes)
            "422 invalid From",
            ResponseTemplate::new(422).set_body_json(refused(300, "Invalid 'From' address.")),
            CONFIG,
            "Invalid 'From' address.",
        ),
        (
            "422 invalid To",
            ResponseTemplate::new(422).set_body_json(refused(300, "Invalid 'To' address: 'x'.")),
            Expect::Rejected,
            "Invalid 'To' address",
        ),
        (
            // "1235 ... the message stream ... was not found" (Postmark, API error codes)
            "422 unknown stream",
            ResponseTemplate::new(422).set_body_json(refused(
                1235,
                "The 'MessageStream' provided does not exist on this server.",
            )),
            CONFIG,
            "error 1235",
        ),
        (
            "422 too many messages",
            ResponseTemplate::new(422).set_body_json(refused(410, "Too many batch messages.")),
            Expect::Rejected,
            "error 410",
        ),
        (
            "422 maintenance",
            ResponseTemplate::new(422).set_body_json(refused(100, "Maintenance.")),
            Expect::Retry(None),
            "error 100",
        ),
        (
            "429 with Retry-After",
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "30")
                .set_body_json(refused(429, "Rate limit exceeded.")),
            Expect::Paused(PauseCause::RateLimit, secs(30)),
            "429",
        ),
        (
            "500",
            ResponseTemplate::new(500).set_body_string("Internal Server Error"),
            Expect::Retry(None),
            "500 Internal Server Error",
        ),
        (
            "503 with Retry-After",
            ResponseTemplate::new(503).insert_header("Retry-After", "120"),
            Expect::Retry(secs(120)),
            "503",
        ),
    ];
    for (case, response, expected, mention) in cases {
        assert_batch_error(case, send(2, response).await, expected, mention);
    }
}

#[tokio::test]
async fn a_hung_postmark_is_retried_after_the_timeout() {
    assert_a_hung_provider_is_retried(ProviderKind::Postmark, Some(TOKEN)).await;
}

#[tokio::test]
async fn a_batch_over_500_is_paused_without_a_request() {
    let server = MockServer::start().await;
    let fixture = Fixture::with(501);

    let result = provider(ProviderKind::Postmark, &server, Some(TOKEN))
        .send(fixture.batch())
        .await;

    assert_batch_error("501 messages", result, CONFIG, "limit of 500");
    assert!(requests(&server).await.is_empty());
}

#[tokio::test]
async fn the_outbound_search_finds_what_postmark_accepted_of_a_batch() {
    // Postmark, messages API: "GET /messages/outbound ... count (required,
    // max 500), offset (required) ... metadata_: filter by metadata";
    // answered {"TotalCount": n, "Messages": [{"MessageID", "Metadata", ...}]}.
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/messages/outbound"))
        .and(query_param("metadata_batch", BATCH_ID))
        .and(query_param("count", "500"))
        .and(query_param("offset", "0"))
        .and(query_param("messagestream", "outbound"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "TotalCount": 1,
            "Messages": [{
                "Tag": "invitation", "MessageID": "pm-2", "MessageStream": "outbound",
                "To": [{"Email": "person2@example.com", "Name": null}],
                "Recipients": ["person2@example.com"], "Status": "Sent",
                "Metadata": {"invitation_id": "inv-2", "batch": BATCH_ID}
            }]
        })))
        .mount(&server)
        .await;
    let fixture = Fixture::with(3);

    let found = provider(ProviderKind::Postmark, &server, Some(TOKEN))
        .accepted(fixture.batch())
        .await;

    assert_eq!(found, Ok(vec![None, Some("pm-2".into()), None]));
    assert_eq!(
        header(&requests(&server).await[0], "x-postmark-server-token"),
        TOKEN
    );
}
