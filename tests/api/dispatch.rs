//! Dispatch end to end: queued invitations become sent emails through a
//! fake provider; faults are retried, credential errors pause, nothing is
//! lost when a worker dies.

use crate::both_backends;
use crate::fakes::{self, use_postmark, PostmarkBatch};
use crate::helpers::{counts, statuses, wait_until, Backend, TestApp};
use serde_json::Value;
use std::collections::HashSet;
use std::time::Duration;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

both_backends!(
    backend:
    queued_invitations_are_sent_through_postmark_and_the_import_completes,
    an_inactive_recipient_fails_while_the_rest_are_sent,
    a_rate_limited_batch_waits_the_time_the_provider_gives_without_spending_an_attempt,
    an_invitation_that_keeps_failing_is_failed_after_the_last_attempt,
    rejected_credentials_pause_dispatch_and_lose_nothing,
);

async fn import_completed(app: &TestApp, id: &str) -> Value {
    let path = format!("/imports/{id}");
    wait_until(Duration::from_secs(20), || async {
        let import: Value = app.get(&path).await.json().await.unwrap();
        (import["status"] == "completed").then_some(import)
    })
    .await
}

async fn queued_invitations_are_sent_through_postmark_and_the_import_completes(backend: Backend) {
    let server = fakes::postmark(Duration::ZERO).await;
    let app = TestApp::spawn_with(backend, |c| use_postmark(c, &server)).await;

    let import = app.import("ann@x.io\nBob <bob@y.io>\nann@x.io\nnope").await;
    let id = import["id"].as_str().unwrap();
    let done = import_completed(&app, id).await;

    let c = counts(&done);
    assert_eq!(
        (c["sent"].as_i64(), c["queued"].as_i64()),
        (Some(2), Some(0))
    );
    assert!(done["completed_at"].is_string());
    let entries = app.report(id).await;
    assert_eq!(statuses(&entries), ["sent", "sent", "duplicate", "invalid"]);
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].headers["x-postmark-server-token"],
        "server-token"
    );
    let sent: Vec<Value> = serde_json::from_slice(&requests[0].body).unwrap();
    let to: Vec<&str> = sent.iter().map(|m| m["To"].as_str().unwrap()).collect();
    assert_eq!(to, ["ann@x.io", "bob@y.io"]);
    assert_eq!(sent[0]["Subject"], "You're invited to join Acme");
    let text = sent[0]["TextBody"].as_str().unwrap();
    let link = text
        .lines()
        .find(|l| l.starts_with("https://invite.test/accept/"));
    let token = link.expect("an accept link").rsplit('/').next().unwrap();
    let stored = app.invitation_by_email("ann@x.io");
    assert_eq!(sent[0]["Metadata"]["invitation_id"], stored.id);
    assert_eq!(stored.status, "sent");
    assert_eq!(
        stored.provider_message_id.as_deref(),
        Some(format!("pm-{}", stored.id).as_str())
    );
    assert_eq!(
        stored.token_hash.as_deref(),
        Some(bulk_invite::dispatch::token::hash(token).as_str())
    );
    assert!(!text.contains(stored.token_hash.as_deref().unwrap()));
    assert!(stored.expires_at.is_some() && stored.sent_at.is_some());
}

async fn an_inactive_recipient_fails_while_the_rest_are_sent(backend: Backend) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/email/batch"))
        .respond_with(PostmarkBatch {
            inactive: HashSet::from(["gone@x.io".to_owned()]),
            delay: Duration::ZERO,
        })
        .mount(&server)
        .await;
    let app = TestApp::spawn_with(backend, |c| use_postmark(c, &server)).await;

    let import = app.import("ann@x.io\ngone@x.io\nbob@y.io").await;
    let done = import_completed(&app, import["id"].as_str().unwrap()).await;

    let c = counts(&done);
    assert_eq!(
        (c["sent"].as_i64(), c["failed"].as_i64()),
        (Some(2), Some(1))
    );
    let entries = app.report(import["id"].as_str().unwrap()).await;
    assert_eq!(statuses(&entries), ["sent", "failed", "sent"]);
    assert!(
        entries[1]["detail"].as_str().unwrap().contains("inactive"),
        "{}",
        entries[1]
    );
}

async fn a_rate_limited_batch_waits_the_time_the_provider_gives_without_spending_an_attempt(
    backend: Backend,
) {
    let server =
        fakes::postmark_after(ResponseTemplate::new(429).insert_header("Retry-After", "1")).await;
    let app = TestApp::spawn_with(backend, |c| use_postmark(c, &server)).await;

    let import = app.import("ann@x.io").await;
    let started = std::time::Instant::now();
    let done = import_completed(&app, import["id"].as_str().unwrap()).await;

    assert_eq!(counts(&done)["sent"], 1);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "waited {:?}",
        started.elapsed()
    );
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[0].body, requests[1].body,
        "the retry is the same batch"
    );
    assert_eq!(
        app.invitation_by_email("ann@x.io").attempts,
        1,
        "a 429 is not an attempt"
    );
}

async fn an_invitation_that_keeps_failing_is_failed_after_the_last_attempt(backend: Backend) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/email/batch"))
        .respond_with(ResponseTemplate::new(503).set_body_string("upstream down"))
        .mount(&server)
        .await;
    let app = TestApp::spawn_with(backend, |c| {
        use_postmark(c, &server);
        c.dispatch.max_attempts = 3;
    })
    .await;

    let import = app.import("ann@x.io").await;
    let done = import_completed(&app, import["id"].as_str().unwrap()).await;

    assert_eq!(counts(&done)["failed"], 1);
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
    let stored = app.invitation_by_email("ann@x.io");
    assert_eq!(stored.status, "failed");
    assert!(stored.last_error.unwrap().contains("503"));
    let entries = app.report(import["id"].as_str().unwrap()).await;
    assert!(entries[0]["detail"].as_str().unwrap().contains("503"));
}

async fn rejected_credentials_pause_dispatch_and_lose_nothing(backend: Backend) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/email/batch"))
        .respond_with(ResponseTemplate::new(401).set_body_json(serde_json::json!({
            "ErrorCode": 10, "Message": "Request does not contain a valid Server token."
        })))
        .mount(&server)
        .await;
    let app = TestApp::spawn_with(backend, |c| use_postmark(c, &server)).await;

    let import = app.import("ann@x.io\nbob@y.io").await;
    let ready: Value = wait_until(Duration::from_secs(20), || async {
        let ready: Value = app.get("/readyz").await.json().await.unwrap();
        (ready["dispatch"]["state"] == "paused").then_some(ready)
    })
    .await;

    assert!(
        ready["dispatch"]["reason"]
            .as_str()
            .unwrap()
            .contains("401"),
        "{ready}"
    );
    let current: Value = app
        .get(&format!("/imports/{}", import["id"].as_str().unwrap()))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(current["status"], "dispatching");
    assert_eq!(counts(&current)["queued"], 2);
    let stored = app.invitation_by_email("ann@x.io");
    assert_eq!((stored.status.as_str(), stored.attempts), ("queued", 0));
    assert_eq!(stored.lease_owner, None);
}
