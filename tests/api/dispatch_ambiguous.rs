//! Ambiguous outcomes: a provider that accepted a batch but answered after
//! the client gave up. Nobody gets two copies where the provider can tell
//! what it accepted, nobody gets more than two where it cannot, a retry is
//! byte for byte the first request, and every link that went out works.

use crate::both_backends;
use crate::fakes::recording::{idempotent_resend, searchable_postmark, Delivered, Outbox};
use crate::fakes::{use_postmark, use_resend};
use crate::helpers::{wait_until, Backend, TestApp};
use bulk_invite::dispatch::token;
use chrono::Timelike;
use std::time::{Duration, SystemTime};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

both_backends!(
    backend:
    a_retry_after_the_clock_moved_on_sends_the_same_bytes_under_the_same_key,
    a_resend_batch_accepted_then_timed_out_is_sent_once_and_every_link_works,
    a_postmark_batch_accepted_then_timed_out_is_looked_up_not_sent_again,
    a_sendgrid_batch_that_never_answers_is_repeated_once_at_most_and_keeps_its_links,
    a_batch_whose_worker_hangs_past_its_lease_is_looked_up_by_the_next_worker,
);

/// Longer than the client's one-second timeout.
const LATE: Duration = Duration::from_millis(2_500);
const SECRET: &str = "the same on every worker";
const PEOPLE: [&str; 4] = ["ann@x.io", "bob@y.io", "cy@z.io", "di@x.io"];

/// Sends are answered `LATE`, after the one-second client timeout.
fn short_timeout(config: &mut bulk_invite::config::ServeConfig) {
    config.dispatch.email_timeout_secs = 1;
}

async fn all_sent(app: &TestApp, emails: &[&str]) {
    wait_until(Duration::from_secs(30), || async {
        emails
            .iter()
            .all(|e| app.invitation_by_email(e).status == "sent")
            .then_some(())
    })
    .await;
}

/// The token in the accept link of an email.
fn token_of(email: &Delivered) -> String {
    let link = email
        .text
        .lines()
        .find(|l| l.starts_with("https://invite.test/accept/"))
        .expect("an accept link");
    link.rsplit('/').next().unwrap_or_default().to_owned()
}

/// Every email that went out carries the token stored for its recipient,
/// and its link opens the invitation.
async fn every_link_works(app: &TestApp, outbox: &[Delivered]) {
    for email in outbox {
        let token = token_of(email);
        let stored = app.invitation_by_email(&email.to);
        assert_eq!(
            stored.token_hash.as_deref(),
            Some(token::hash(&token).as_str()),
            "{}",
            email.to
        );
        let page = app
            .client
            .get(app.url(&format!("/invitations/accept/{token}")))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200, "{}", email.to);
    }
}

fn assert_one_copy_each(outbox: &Outbox) {
    for person in PEOPLE {
        assert_eq!(outbox.copies(person), 1, "copies sent to {person}");
    }
}

/// Waits until the wall clock is in the last second of a minute, so a
/// retry a second later renders in the next minute.
async fn wait_for_the_last_second_of_a_minute() {
    loop {
        let now = chrono::Utc::now();
        if now.second() == 59 && now.nanosecond() < 300_000_000 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn a_retry_after_the_clock_moved_on_sends_the_same_bytes_under_the_same_key(
    backend: Backend,
) {
    let (server, outbox) = idempotent_resend(1, LATE).await;
    let app = TestApp::spawn_with(backend, |c| {
        use_resend(c, &server);
        short_timeout(c);
    })
    .await;

    wait_for_the_last_second_of_a_minute().await;
    app.import("ann@x.io").await;
    all_sent(&app, &["ann@x.io"]).await;

    let by_key = outbox.by_key();
    assert_eq!(by_key.len(), 1, "one batch, one key");
    let tries = by_key.values().next().unwrap();
    assert!(tries.len() >= 2, "the first try timed out and was retried");
    let minute = |at: SystemTime| chrono::DateTime::<chrono::Utc>::from(at).minute();
    assert_ne!(
        minute(tries[0].at),
        minute(tries[tries.len() - 1].at),
        "the retry came in a later minute than the first try"
    );
    assert!(
        tries.iter().all(|t| t.body == tries[0].body),
        "identical bytes"
    );
    assert_eq!(outbox.conflicts(), 0, "no invalid_idempotent_request");
    assert_eq!(outbox.copies("ann@x.io"), 1);
    every_link_works(&app, &outbox.delivered()).await;
}

async fn a_resend_batch_accepted_then_timed_out_is_sent_once_and_every_link_works(
    backend: Backend,
) {
    let (server, outbox) = idempotent_resend(1, LATE).await;
    let app = TestApp::spawn_with(backend, |c| {
        use_resend(c, &server);
        short_timeout(c);
    })
    .await;

    app.import(PEOPLE.join("\n")).await;
    all_sent(&app, &PEOPLE).await;

    assert!(outbox.requests() >= 2, "the batch was tried again");
    assert_one_copy_each(&outbox);
    assert_eq!(outbox.conflicts(), 0);
    every_link_works(&app, &outbox.delivered()).await;
}

async fn a_postmark_batch_accepted_then_timed_out_is_looked_up_not_sent_again(backend: Backend) {
    let (server, outbox) = searchable_postmark(1, LATE).await;
    let app = TestApp::spawn_with(backend, |c| {
        use_postmark(c, &server);
        short_timeout(c);
    })
    .await;

    app.import(PEOPLE.join("\n")).await;
    all_sent(&app, &PEOPLE).await;

    assert_one_copy_each(&outbox);
    let requests = server.received_requests().await.unwrap();
    assert!(
        requests
            .iter()
            .any(|r| r.url.path() == "/messages/outbound"),
        "the batch was looked up"
    );
    let stored = app.invitation_by_email(PEOPLE[0]);
    assert!(stored.provider_message_id.is_some(), "the id Postmark gave");
    assert_eq!(stored.last_error, None);
    every_link_works(&app, &outbox.delivered()).await;
}

async fn a_sendgrid_batch_that_never_answers_is_repeated_once_at_most_and_keeps_its_links(
    backend: Backend,
) {
    // SendGrid mail send: "202 Accepted" with an empty body; this one
    // accepts every request but always answers after the client gave up.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v3/mail/send"))
        .respond_with(ResponseTemplate::new(202).set_delay(LATE))
        .mount(&server)
        .await;
    let app = TestApp::spawn_with(backend, |c| {
        use_postmark(c, &server);
        short_timeout(c);
        c.dispatch.email_provider = bulk_invite::dispatch::providers::ProviderKind::Sendgrid;
        c.dispatch.sendgrid_base_url = Some(server.uri());
        c.dispatch.sendgrid_api_key = Some("SG.test".into());
    })
    .await;

    app.import(PEOPLE.join("\n")).await;
    all_sent(&app, &PEOPLE).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2, "the batch was repeated once, no more");
    assert_eq!(requests[0].body, requests[1].body);
    let sent: serde_json::Value = serde_json::from_slice(&requests[0].body).unwrap();
    let link = sent["personalizations"][0]["substitutions"]["-accept_url-"]
        .as_str()
        .expect("the link");
    let token = link.rsplit('/').next().unwrap();
    let stored = app.invitation_by_email(PEOPLE[0]);
    assert_eq!(
        stored.token_hash.as_deref(),
        Some(token::hash(token).as_str())
    );
    assert!(
        stored
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("never confirmed"),
        "{:?}",
        stored.last_error
    );
}

async fn a_batch_whose_worker_hangs_past_its_lease_is_looked_up_by_the_next_worker(
    backend: Backend,
) {
    // The first request is accepted but answered only after 6 s, while the
    // lease of its batch lasts 1 s: a second worker takes the batch over.
    let (server, outbox) = searchable_postmark(1, Duration::from_secs(6)).await;
    let app = TestApp::spawn_with(backend, |c| {
        use_postmark(c, &server);
        c.dispatch.email_timeout_secs = 30;
        c.dispatch.lease_secs = 1;
        c.dispatch.token_secret = Some(SECRET.into());
    })
    .await;
    app.import(PEOPLE.join("\n")).await;
    wait_until(Duration::from_secs(10), || async {
        (outbox.requests() == 1).then_some(())
    })
    .await;
    let started = std::time::Instant::now();
    let mut config = bulk_invite::config::ServeConfig::with_bind_addr("unused").dispatch;
    use_postmark_dispatch(&mut config, &server);
    // Every process shares the token secret, as the README asks, so the
    // link the first worker sent is the one the second records.
    config.token_secret = Some(SECRET.into());
    let second = bulk_invite::dispatch::Dispatcher::new(app.pool.clone(), &config).unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(second.run(stopped));

    all_sent(&app, &PEOPLE).await;

    assert!(
        started.elapsed() < Duration::from_secs(5),
        "settled before the first worker heard back"
    );
    assert_one_copy_each(&outbox);
    stop.send(true).unwrap();
    task.await.unwrap();
    every_link_works(&app, &outbox.delivered()).await;
}

/// The dispatch settings of [`use_postmark`], for a second dispatcher.
fn use_postmark_dispatch(config: &mut bulk_invite::config::DispatchConfig, server: &MockServer) {
    let mut serve = bulk_invite::config::ServeConfig::with_bind_addr("unused");
    use_postmark(&mut serve, server);
    *config = serve.dispatch;
}
