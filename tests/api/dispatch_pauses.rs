//! Pauses and bounds: a provider's wait is capped whatever its header says,
//! quotas and configuration errors pause dispatch without spending an
//! attempt and it resumes by itself, and a step that panics is counted
//! while dispatch goes on.

use crate::both_backends;
use crate::fakes::{postmark_after, use_postmark, use_resend, PostmarkBatch};
use crate::helpers::{wait_until, Backend, TestApp};
use bulk_invite::config::ServeConfig;
use bulk_invite::dispatch::provider::{Batch, BatchError, Outcome, Provider};
use bulk_invite::dispatch::providers::ProviderKind;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Respond, ResponseTemplate};

both_backends!(
    backend:
    a_providers_wait_of_a_hundred_trillion_seconds_is_capped_and_dispatch_goes_on,
    a_used_up_quota_pauses_dispatch_until_its_reset_and_fails_nobody,
    a_refused_sender_pauses_dispatch_and_the_invitations_go_out_once_fixed,
    a_panicking_step_is_counted_and_dispatch_goes_on,
);

async fn sent_with_attempts(app: &TestApp, email: &str) -> i32 {
    wait_until(Duration::from_secs(20), || async {
        let stored = app.invitation_by_email(email);
        (stored.status == "sent").then_some(stored.attempts)
    })
    .await
}

/// Answers `first` to the first `times` requests to `route`, then `then`.
async fn provider_after(
    route: &str,
    first: ResponseTemplate,
    times: u64,
    then: impl Respond + 'static,
) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(route))
        .respond_with(first)
        .up_to_n_times(times)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(route))
        .respond_with(then)
        .mount(&server)
        .await;
    server
}

fn use_sendgrid(c: &mut ServeConfig, server: &MockServer) {
    use_postmark(c, server);
    c.dispatch.email_provider = ProviderKind::Sendgrid;
    c.dispatch.sendgrid_base_url = Some(server.uri());
    c.dispatch.sendgrid_api_key = Some("SG.test".into());
}

async fn a_providers_wait_of_a_hundred_trillion_seconds_is_capped_and_dispatch_goes_on(
    backend: Backend,
) {
    let far = "100000000000000";
    let years_away = (chrono::Utc::now().timestamp() + 10 * 365 * 86_400).to_string();
    // (case, provider, the first answer, attempts once sent)
    let cases: [(&str, ProviderKind, ResponseTemplate, i32); 3] = [
        (
            "postmark 503",
            ProviderKind::Postmark,
            ResponseTemplate::new(503).insert_header("Retry-After", far),
            2,
        ),
        (
            // Postmark API errors: "429 — Rate limit exceeded"
            "postmark 429",
            ProviderKind::Postmark,
            ResponseTemplate::new(429)
                .insert_header("Retry-After", far)
                .set_body_json(json!({"ErrorCode": 429, "Message": "Rate limit exceeded."})),
            1,
        ),
        (
            // SendGrid rate limits: "X-RateLimit-Reset: the time at which the
            // rate limit will reset (Unix timestamp)", with 429 and
            // {"errors": [{"field": null, "message": "too many requests"}]}
            "sendgrid 429",
            ProviderKind::Sendgrid,
            ResponseTemplate::new(429)
                .insert_header("X-RateLimit-Reset", years_away.as_str())
                .set_body_json(
                    json!({"errors": [{"field": null, "message": "too many requests"}]}),
                ),
            1,
        ),
    ];
    for (case, kind, first, attempts) in cases {
        let server = match kind {
            ProviderKind::Sendgrid => {
                provider_after("/v3/mail/send", first, 1, ResponseTemplate::new(202)).await
            }
            _ => postmark_after(first).await,
        };
        let app = TestApp::spawn_with(backend, |c| {
            match kind {
                ProviderKind::Sendgrid => use_sendgrid(c, &server),
                _ => use_postmark(c, &server),
            }
            c.dispatch.max_backoff_secs = 1;
            c.dispatch.pause_secs = 1;
        })
        .await;

        app.import("ann@x.io").await;

        assert_eq!(
            sent_with_attempts(&app, "ann@x.io").await,
            attempts,
            "{case}"
        );
        let ready: Value = app.get("/readyz").await.json().await.unwrap();
        assert_eq!(ready["dispatch"]["state"], "running", "{case}: {ready}");
        let metrics = app.get("/metrics").await.text().await.unwrap();
        assert!(
            metrics.contains("bulk_invite_dispatch_step_failures_total 0"),
            "{case}: {metrics}"
        );
    }
}

async fn a_used_up_quota_pauses_dispatch_until_its_reset_and_fails_nobody(backend: Backend) {
    // Resend usage limits: 429 `daily_quota_exceeded`, "You have reached
    // your daily email sending quota." with the `ratelimit-reset` header.
    let quota = ResponseTemplate::new(429)
        .insert_header("ratelimit-reset", "2")
        .set_body_json(json!({
            "statusCode": 429, "name": "daily_quota_exceeded",
            "message": "You have reached your daily email sending quota."
        }));
    let ok = crate::fakes::ResendBatch {
        delay: Duration::ZERO,
    };
    let server = provider_after("/emails/batch", quota, 2, ok).await;
    let app = TestApp::spawn_with(backend, |c| {
        use_resend(c, &server);
        c.dispatch.max_attempts = 1;
    })
    .await;

    app.import("ann@x.io\nbob@y.io").await;
    let ready: Value = wait_until(Duration::from_secs(10), || async {
        let ready: Value = app.get("/readyz").await.json().await.unwrap();
        (ready["dispatch"]["state"] == "paused").then_some(ready)
    })
    .await;

    assert_eq!(ready["dispatch"]["cause"], "quota", "{ready}");
    assert!(ready["dispatch"]["reason"]
        .as_str()
        .unwrap()
        .contains("daily_quota_exceeded"));
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("bulk_invite_dispatch_paused{cause=\"quota\"} 1"),
        "{metrics}"
    );
    let paused = app.invitation_by_email("ann@x.io");
    assert_eq!((paused.status.as_str(), paused.attempts), ("queued", 0));

    assert_eq!(sent_with_attempts(&app, "ann@x.io").await, 1);
    assert_eq!(sent_with_attempts(&app, "bob@y.io").await, 1);
    let ready: Value = app.get("/readyz").await.json().await.unwrap();
    assert_eq!(ready["dispatch"]["state"], "running");
}

async fn a_refused_sender_pauses_dispatch_and_the_invitations_go_out_once_fixed(backend: Backend) {
    // (case, provider, the refusal, what the reason names)
    let cases: [(&str, ProviderKind, ResponseTemplate, &str); 3] = [
        (
            // Postmark API errors: "300 — Invalid email request", here about the sender.
            "postmark invalid From",
            ProviderKind::Postmark,
            ResponseTemplate::new(422)
                .set_body_json(json!({"ErrorCode": 300, "Message": "Invalid 'From' address."})),
            "Invalid 'From' address",
        ),
        (
            // Postmark API errors: "1235 — Message Stream not found".
            "postmark unknown stream",
            ProviderKind::Postmark,
            ResponseTemplate::new(422).set_body_json(json!({"ErrorCode": 1235,
                "Message": "The 'MessageStream' provided does not exist on this server."})),
            "1235",
        ),
        (
            // Resend errors: "invalid_from_address, Status: 422, Message:
            // Invalid `from` field ..."
            "resend invalid from",
            ProviderKind::Resend,
            ResponseTemplate::new(422).set_body_json(json!({"statusCode": 422,
                "name": "invalid_from_address",
                "message": "Invalid `from` field. The email address needs to follow the `email@example.com` or `Name <email@example.com>` format."})),
            "invalid_from_address",
        ),
    ];
    for (case, kind, refusal, names) in cases {
        let server = match kind {
            ProviderKind::Resend => {
                let ok = crate::fakes::ResendBatch {
                    delay: Duration::ZERO,
                };
                provider_after("/emails/batch", refusal, 2, ok).await
            }
            _ => {
                let ok = PostmarkBatch {
                    inactive: HashSet::new(),
                    delay: Duration::ZERO,
                };
                provider_after("/email/batch", refusal, 2, ok).await
            }
        };
        let app = TestApp::spawn_with(backend, |c| {
            match kind {
                ProviderKind::Resend => use_resend(c, &server),
                _ => use_postmark(c, &server),
            }
            c.dispatch.pause_secs = 1;
            c.dispatch.max_attempts = 1;
        })
        .await;

        app.import("ann@x.io").await;
        let ready: Value = wait_until(Duration::from_secs(10), || async {
            let ready: Value = app.get("/readyz").await.json().await.unwrap();
            (ready["dispatch"]["state"] == "paused").then_some(ready)
        })
        .await;

        assert_eq!(ready["dispatch"]["cause"], "configuration", "{case}");
        let reason = ready["dispatch"]["reason"].as_str().unwrap();
        assert!(reason.contains(names), "{case}: {reason}");
        assert_eq!(
            app.invitation_by_email("ann@x.io").status,
            "queued",
            "{case}"
        );
        assert_eq!(sent_with_attempts(&app, "ann@x.io").await, 1, "{case}");
    }
}

/// Panics on its first send, then accepts everything.
struct PanicsOnce(AtomicUsize);

#[async_trait::async_trait]
impl Provider for PanicsOnce {
    fn name(&self) -> &'static str {
        "panics-once"
    }

    fn max_batch(&self) -> usize {
        10
    }

    async fn send(&self, batch: Batch<'_>) -> Result<Vec<Outcome>, BatchError> {
        if self.0.fetch_add(1, Ordering::SeqCst) == 0 {
            panic!("a provider bug");
        }
        Ok(batch
            .messages
            .iter()
            .map(|_| Outcome::Sent { message_id: None })
            .collect())
    }
}

async fn a_panicking_step_is_counted_and_dispatch_goes_on(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut config = ServeConfig::with_bind_addr("unused").dispatch;
    config.poll_ms = 50;
    config.lease_secs = 1;
    let provider = Arc::new(PanicsOnce(AtomicUsize::new(0)));
    let dispatcher =
        bulk_invite::dispatch::Dispatcher::with_provider(app.pool.clone(), &config, provider)
            .expect("dispatcher");
    let status = dispatcher.status();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(dispatcher.run(stopped));

    app.import("ann@x.io").await;

    sent_with_attempts(&app, "ann@x.io").await;
    assert_eq!(status.step_failures(), 1);
    assert_eq!(status.get().state, "running");
    stop.send(true).unwrap();
    task.await.unwrap();
    assert_eq!(status.get().state, "stopped");
}
