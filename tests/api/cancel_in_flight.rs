//! Cancelling an import while a batch of it is with the provider: what was
//! already handed over cannot be stopped, so it is counted as in flight,
//! and the emails that then go out carry links that answer "revoked"
//! (410), never 404. Nothing that was still waiting is sent.

use crate::both_backends;
use crate::fakes;
use crate::helpers::{assert_problem, counts, statuses, wait_until, Backend, TestApp};
use serde_json::Value;
use std::time::Duration;

both_backends!(
    backend:
    cancelling_during_an_in_flight_batch_counts_it_and_its_links_answer_revoked,
);

/// How long the fake Postmark takes to answer a batch.
const SLOW: Duration = Duration::from_secs(3);

async fn cancelling_during_an_in_flight_batch_counts_it_and_its_links_answer_revoked(
    backend: Backend,
) {
    let server = fakes::postmark(SLOW).await;
    let app = TestApp::spawn_with(backend, |c| {
        fakes::use_postmark(c, &server);
        c.dispatch.batch_size = 10;
    })
    .await;
    let emails: Vec<String> = (0..30).map(|n| format!("p{n:02}@x.io")).collect();
    let import = app.import(emails.join("\n")).await;
    let id = import["id"].as_str().unwrap().to_owned();
    wait_until(Duration::from_secs(10), || async {
        let leased = app.count_where("invitations", "lease_owner IS NOT NULL");
        (leased == 10 && !server.received_requests().await?.is_empty()).then_some(())
    })
    .await;

    let cancel = app
        .client
        .post(app.url(&format!("/imports/{id}/cancel")))
        .bearer_auth(&app.api_key)
        .send()
        .await
        .unwrap();

    assert_eq!(cancel.status(), 200);
    let cancel: Value = cancel.json().await.unwrap();
    assert_eq!(
        (cancel["changed"].as_i64(), cancel["in_flight"].as_i64()),
        (Some(30), Some(10))
    );
    assert_eq!(cancel["import"]["status"], "completed");
    wait_until(Duration::from_secs(20), || async {
        (app.count_where("invitations", "token_hash IS NOT NULL") == 10).then_some(())
    })
    .await;
    // Time for a dispatcher that wrongly sent the rest to do so.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent = fakes::postmark_ids(&server).await;
    assert_eq!(sent.len(), 10, "only the batch in flight went out");
    for token in accept_tokens(&server).await {
        let path = format!("/invitations/accept/{token}");
        let preview = app.client.get(app.url(&path)).send().await.unwrap();
        assert_problem(preview, 410, "invitation-revoked").await;
        let accept = app.client.post(app.url(&path)).send().await.unwrap();
        assert_problem(accept, 410, "invitation-revoked").await;
    }
    let after: Value = app
        .get(&format!("/imports/{id}"))
        .await
        .json()
        .await
        .unwrap();
    let c = counts(&after);
    assert_eq!(
        (c["revoked"].as_i64(), c["sent"].as_i64()),
        (Some(30), Some(0))
    );
    let report = app.report(&id).await;
    assert!(statuses(&report).iter().all(|s| *s == "revoked"));
    let emailed = report
        .iter()
        .filter(|e| e["detail"].as_str().is_some_and(|r| r.contains("emailed")))
        .count();
    assert_eq!(emailed, 10, "the report says which were emailed anyway");
    let listed: Value = app
        .get("/invitations?status=revoked&limit=100")
        .await
        .json()
        .await
        .unwrap();
    let with_sent_at = listed["invitations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["sent_at"].is_string())
        .count();
    assert_eq!(with_sent_at, 10);
}

/// The accept token of every message the fake received.
async fn accept_tokens(server: &wiremock::MockServer) -> Vec<String> {
    let mut tokens = Vec::new();
    for request in server.received_requests().await.unwrap_or_default() {
        let messages: Vec<Value> = serde_json::from_slice(&request.body).unwrap();
        for m in messages {
            let text = m["TextBody"].as_str().unwrap();
            let link = text.lines().find(|l| l.contains("/accept/")).unwrap();
            tokens.push(link.trim().rsplit('/').next().unwrap().to_owned());
        }
    }
    tokens
}
