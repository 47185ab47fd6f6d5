//! Local fake providers: wiremock servers on 127.0.0.1 that answer in the
//! providers' real wire formats.

use bulk_invite::config::ServeConfig;
use bulk_invite::dispatch::providers::ProviderKind;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::Duration;
use wiremock::matchers::{header_exists, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// Answers Postmark's `/email/batch` with one result per message; addresses
/// in `inactive` get ErrorCode 406.
pub struct PostmarkBatch {
    pub inactive: HashSet<String>,
    pub delay: Duration,
}

impl Respond for PostmarkBatch {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let messages: Vec<Value> = serde_json::from_slice(&request.body).expect("a JSON array");
        let results: Vec<Value> = messages
            .iter()
            .map(|m| {
                let to = m["To"].as_str().unwrap_or_default();
                if self.inactive.contains(to) {
                    json!({"ErrorCode": 406, "Message": "You tried to send to a recipient that has been marked as inactive.", "To": to})
                } else {
                    json!({"ErrorCode": 0, "Message": "OK", "To": to,
                           "MessageID": format!("pm-{}", m["Metadata"]["invitation_id"].as_str().unwrap_or_default()),
                           "SubmittedAt": "2026-11-26T01:00:00Z"})
                }
            })
            .collect();
        ResponseTemplate::new(200)
            .set_body_json(results)
            .set_delay(self.delay)
    }
}

/// A fake Postmark answering every batch with success (after `delay`).
pub async fn postmark(delay: Duration) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/email/batch"))
        .and(header_exists("X-Postmark-Server-Token"))
        .respond_with(PostmarkBatch {
            inactive: HashSet::new(),
            delay,
        })
        .mount(&server)
        .await;
    server
}

/// Answers Resend's `/emails/batch` with one id per message.
pub struct ResendBatch {
    pub delay: Duration,
}

impl Respond for ResendBatch {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let messages: Vec<Value> = serde_json::from_slice(&request.body).expect("a JSON array");
        let data: Vec<Value> = (0..messages.len())
            .map(|_| json!({"id": uuid::Uuid::new_v4().to_string()}))
            .collect();
        ResponseTemplate::new(200)
            .set_body_json(json!({ "data": data }))
            .set_delay(self.delay)
    }
}

/// The invitation ids of every message the fake Postmark received, in order.
pub async fn postmark_ids(server: &MockServer) -> Vec<String> {
    let mut ids = Vec::new();
    for request in server.received_requests().await.unwrap_or_default() {
        let messages: Vec<Value> = serde_json::from_slice(&request.body).expect("JSON");
        ids.extend(
            messages
                .iter()
                .map(|m| m["Metadata"]["invitation_id"].as_str().unwrap().to_owned()),
        );
    }
    ids
}

/// A fake Postmark whose first batch gets `first`, and every later one success.
pub async fn postmark_after(first: impl Respond + 'static) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/email/batch"))
        .respond_with(first)
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/email/batch"))
        .respond_with(PostmarkBatch {
            inactive: HashSet::new(),
            delay: Duration::ZERO,
        })
        .mount(&server)
        .await;
    server
}

/// Turns the app's dispatcher on, sending through the fake Postmark quickly
/// (short polls and backoff) with accept links under `https://invite.test`.
pub fn use_postmark(config: &mut ServeConfig, server: &MockServer) {
    config.dispatcher = true;
    let d = &mut config.dispatch;
    d.email_provider = ProviderKind::Postmark;
    d.postmark_base_url = Some(server.uri());
    d.postmark_server_token = Some("server-token".into());
    d.poll_ms = 50;
    d.backoff_ms = 50;
    d.public_base_url = "https://invite.test".into();
}

pub mod recording;

/// Turns the app's dispatcher on, sending through the fake Resend quickly.
pub fn use_resend(config: &mut ServeConfig, server: &MockServer) {
    use_postmark(config, server);
    let d = &mut config.dispatch;
    d.email_provider = ProviderKind::Resend;
    d.resend_base_url = Some(server.uri());
    d.resend_api_key = Some("re_test_key".into());
}
