//! A bad recipient fails alone, a batch too large is split, and requests
//! keep to the provider's documented request rate.

use crate::both_backends;
use crate::fakes::recording::idempotent_resend;
use crate::fakes::{use_postmark, use_resend, PostmarkBatch};
use crate::helpers::{statuses, wait_until, Backend, TestApp};
use bulk_invite::dispatch::providers::ProviderKind;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::Duration;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

both_backends!(
    backend:
    a_recipient_sendgrid_names_in_a_400_fails_alone_and_the_rest_are_sent,
    a_batch_too_large_for_the_provider_is_split_until_it_fits,
    one_message_requests_keep_to_the_providers_request_rate,
);

const BAD: &str = "bad@x.io";

/// SendGrid refusing a request that contains `BAD`, naming its
/// personalization as SendGrid's 400 does ("field":
/// "personalizations.N.to.0.email"); any other request is accepted (202).
struct RefusesOneAddress;

impl Respond for RefusesOneAddress {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).expect("JSON");
        let to: Vec<&str> = body["personalizations"]
            .as_array()
            .expect("personalizations")
            .iter()
            .map(|p| p["to"][0]["email"].as_str().unwrap_or_default())
            .collect();
        match to.iter().position(|e| *e == BAD) {
            Some(n) => ResponseTemplate::new(400).set_body_json(json!({"errors": [{
                "message": "Does not contain a valid address.",
                "field": format!("personalizations.{n}.to.0.email"),
                "help": "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html#message.personalizations.to"
            }]})),
            None => ResponseTemplate::new(202).insert_header("X-Message-Id", "sg-1"),
        }
    }
}

async fn import_done(app: &TestApp, id: &str) -> Vec<Value> {
    let path = format!("/imports/{id}");
    wait_until(Duration::from_secs(20), || async {
        let import: Value = app.get(&path).await.json().await.unwrap();
        (import["status"] == "completed").then_some(())
    })
    .await;
    app.report(id).await
}

async fn a_recipient_sendgrid_names_in_a_400_fails_alone_and_the_rest_are_sent(backend: Backend) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v3/mail/send"))
        .respond_with(RefusesOneAddress)
        .mount(&server)
        .await;
    let app = TestApp::spawn_with(backend, |c| {
        use_postmark(c, &server);
        c.dispatch.email_provider = ProviderKind::Sendgrid;
        c.dispatch.sendgrid_base_url = Some(server.uri());
        c.dispatch.sendgrid_api_key = Some("SG.test".into());
    })
    .await;

    let import = app.import(format!("ann@x.io\n{BAD}\nbob@y.io")).await;
    let entries = import_done(&app, import["id"].as_str().unwrap()).await;

    assert_eq!(statuses(&entries), ["sent", "failed", "sent"]);
    let reason = entries[1]["detail"].as_str().unwrap();
    assert!(
        reason.contains("Does not contain a valid address."),
        "{reason}"
    );
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2, "the rest went again without the bad one");
    let again: Value = serde_json::from_slice(&requests[1].body).unwrap();
    assert_eq!(again["personalizations"].as_array().unwrap().len(), 2);
    assert_eq!(app.invitation_by_email("ann@x.io").attempts, 1);
}

/// Postmark answering 413 to any batch over two messages.
struct TakesTwoAtMost(PostmarkBatch);

impl Respond for TakesTwoAtMost {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let messages: Vec<Value> = serde_json::from_slice(&request.body).expect("JSON");
        if messages.len() > 2 {
            // HTTP 413 Payload Too Large, as Postmark's front end answers an
            // oversized request (its batch limit is 50 MB).
            return ResponseTemplate::new(413).set_body_string("Request Entity Too Large");
        }
        self.0.respond(request)
    }
}

async fn a_batch_too_large_for_the_provider_is_split_until_it_fits(backend: Backend) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/email/batch"))
        .respond_with(TakesTwoAtMost(PostmarkBatch {
            inactive: HashSet::new(),
            delay: Duration::ZERO,
        }))
        .mount(&server)
        .await;
    let app = TestApp::spawn_with(backend, |c| use_postmark(c, &server)).await;
    let people: Vec<String> = (0..7).map(|i| format!("p{i}@x.io")).collect();

    let import = app.import(people.join("\n")).await;
    let entries = import_done(&app, import["id"].as_str().unwrap()).await;

    assert!(
        statuses(&entries).iter().all(|s| *s == "sent"),
        "{entries:?}"
    );
    let requests = server.received_requests().await.unwrap();
    let batches: Vec<Vec<Value>> = requests
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(batches[0].len(), 7, "the first try was the whole batch");
    let mut accepted: Vec<&str> = batches
        .iter()
        .filter(|b| b.len() <= 2)
        .flatten()
        .map(|m| m["To"].as_str().unwrap())
        .collect();
    accepted.sort();
    let expected: Vec<&str> = people.iter().map(String::as_str).collect();
    assert_eq!(accepted, expected, "each sent once, in batches that fit");
    assert_eq!(app.invitation_by_email("p0@x.io").attempts, 1);
}

async fn one_message_requests_keep_to_the_providers_request_rate(backend: Backend) {
    // (EMAIL_REQUEST_RATE_LIMIT, the least gap between two requests)
    let cases = [
        (0.0, Duration::from_millis(450)),
        (1.0, Duration::from_millis(950)),
    ];
    for (limit, least_gap) in cases {
        let (server, outbox) = idempotent_resend(0, Duration::ZERO).await;
        let app = TestApp::spawn_with(backend, |c| {
            use_resend(c, &server);
            c.dispatch.email_request_rate_limit = limit;
        })
        .await;

        // One address at a time, each its own one-message request (the
        // default batch holds 100): a limit in messages would let them
        // through as fast as they come.
        for (n, email) in ["a@x.io", "b@x.io", "c@x.io", "d@x.io"].iter().enumerate() {
            app.import(*email).await;
            wait_until(Duration::from_secs(20), || async {
                (outbox.requests() > n).then_some(())
            })
            .await;
        }

        let mut times: Vec<_> = outbox.by_key().values().flatten().map(|r| r.at).collect();
        times.sort();
        for pair in times.windows(2) {
            let gap = pair[1].duration_since(pair[0]).unwrap_or_default();
            assert!(gap >= least_gap, "limit {limit}: {gap:?} between requests");
        }
    }
}
