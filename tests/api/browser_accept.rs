//! The accept flow in Debian's headless Chromium (`tests/browser/accept.mjs`):
//! from the link in an email the fake Postmark received, through the accept
//! page and the form post, to the confirmation or the import's redirect
//! target, and back to the link, now used. Screenshots go to target/browser/.

use crate::accept_pages::{invite, token_of};
use crate::browser::run_script;
use crate::fakes;
use crate::helpers::{postgres_available, Backend, TestApp};
use crate::served::free_port;
use serde_json::Value;
use std::time::Duration;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium: .ci/browser-setup"]
async fn browser_accept_flow_on_sqlite() {
    accept_flow(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium: .ci/browser-setup"]
async fn browser_accept_flow_on_postgres() {
    if postgres_available() {
        accept_flow(Backend::Postgres).await;
    }
}

/// The first link in an email's HTML body: what the invitee clicks.
fn clicked_link(html: &str) -> String {
    let start = html.find("href=\"").expect("a link in the email") + "href=\"".len();
    let end = start + html[start..].find('"').expect("the link's end");
    html[start..end].replace("&amp;", "&")
}

async fn accept_flow(backend: Backend) {
    let target = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/welcome"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            "<!doctype html><html lang=\"en\"><title>Welcome</title><h1>Welcome aboard</h1></html>",
            "text/html; charset=utf-8",
        ))
        .mount(&target)
        .await;
    let provider = fakes::postmark(Duration::ZERO).await;
    // The links in the emails must reach this app, so its address is fixed first.
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let app = TestApp::spawn_with(backend, |c| {
        fakes::use_postmark(c, &provider);
        c.bind_addr = format!("127.0.0.1:{port}");
        c.dispatch.public_base_url = base.clone();
        c.allowed_redirect_origins = vec![target.uri()];
    })
    .await;
    let message = "Welcome to the team! Reply to this email if you have questions.";
    invite(&app, "ann.lee@example.com", &[("message", message)]).await;
    let redirect = format!("{}/welcome", target.uri());
    invite(&app, "bob@example.com", &[("redirect_url", &redirect)]).await;

    let mut links = std::collections::HashMap::new();
    for request in provider.received_requests().await.unwrap() {
        let messages: Vec<Value> = serde_json::from_slice(&request.body).unwrap();
        for m in messages {
            let link = clicked_link(m["HtmlBody"].as_str().unwrap());
            links.insert(m["To"].as_str().unwrap().to_owned(), link);
        }
    }
    let accept_link = links["ann.lee@example.com"].clone();
    assert!(
        accept_link.starts_with(&format!("{base}/accept/")),
        "{accept_link}"
    );

    let out = run_script(
        "accept.mjs",
        &[
            ("ACCEPT_LINK", accept_link),
            ("REDIRECT_LINK", links["bob@example.com"].clone()),
            ("REDIRECT_TARGET", redirect.clone()),
            ("UNKNOWN_LINK", format!("{base}/accept/{}", "x".repeat(43))),
            ("ACCOUNT", "Acme".into()),
            ("EMAIL", "ann.lee@example.com".into()),
            ("MESSAGE", message.into()),
            ("SHOT_PREFIX", format!("accept-{backend:?}").to_lowercase()),
        ],
    );
    let seen: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(seen["landed"], "Welcome aboard");
    let pages = seen["pages"].as_array().unwrap();
    assert_eq!(pages.len(), 8, "{seen}");
    for page in pages {
        assert_eq!(page["axe_violations"], 0, "{page}");
        assert!(
            page["scrollWidth"].as_u64() <= page["clientWidth"].as_u64(),
            "{page}"
        );
    }
    assert_eq!(
        app.invitation_by_email("ann.lee@example.com").status,
        "accepted"
    );
    assert_eq!(
        app.invitation_by_email("bob@example.com").status,
        "accepted"
    );
    assert!(!token_of(&links["bob@example.com"]).is_empty());

    // The redirect target was reached without the token in a Referer.
    let visits: Vec<_> = target
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.url.path() == "/welcome")
        .collect();
    assert_eq!(visits.len(), 1);
    assert!(
        visits[0].headers.get("referer").is_none(),
        "{:?}",
        visits[0].headers
    );
}
