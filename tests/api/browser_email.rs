//! The invitation email as a mail client's browser engine shows it:
//! rendered in Chromium from what the provider received, in English and
//! German, at a phone's and a desktop's width (`tests/browser/email.mjs`).
//! The English screenshot is the README's `docs/img/email-en.png`.

use crate::browser::run_script;
use crate::fakes::{self, use_postmark};
use crate::helpers::{wait_until, Backend, TestApp};
use reqwest::multipart::{Form, Part};
use serde_json::Value;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium: .ci/browser-setup"]
async fn browser_the_invitation_email_renders_with_one_button_and_nothing_from_outside() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        if backend == Backend::Postgres && !crate::helpers::postgres_available() {
            continue;
        }
        let server = fakes::postmark(Duration::ZERO).await;
        let app = TestApp::spawn_with(backend, |c| {
            use_postmark(c, &server);
            c.dispatch.product_name = Some("Orbit".into());
        })
        .await;
        for (locale, to) in [("en", "bob@example.com"), ("de", "jonas@example.com")] {
            let form = Form::new()
                .part(
                    "file",
                    Part::bytes(to.as_bytes().to_vec()).file_name("team.txt"),
                )
                .text("invited_by", "Ann Lee")
                .text("locale", locale)
                .text(
                    "message",
                    "We'd love to have you on the launch team.\nSee you Monday!",
                );
            assert_eq!(app.upload_form(form).await.status(), 201);
            let email = wait_until(Duration::from_secs(20), || async {
                let requests = server.received_requests().await.unwrap_or_default();
                requests.iter().find_map(|r| {
                    let batch: Vec<Value> = serde_json::from_slice(&r.body).ok()?;
                    batch.into_iter().find(|m| m["To"] == to)
                })
            })
            .await;
            let text = email["TextBody"].as_str().unwrap();
            let accept_url = text
                .lines()
                .find(|l| l.starts_with("https://invite.test/"))
                .expect("the text names the accept link");
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("email.html");
            std::fs::write(&path, email["HtmlBody"].as_str().unwrap()).unwrap();
            let shot = format!("email-{locale}.png");
            let out = run_script(
                "email.mjs",
                &[
                    ("EMAIL_HTML", path.display().to_string()),
                    ("ACCEPT_URL", accept_url.to_owned()),
                    ("SHOT_NAME", shot),
                ],
            );
            let seen: Value = serde_json::from_str(out.trim()).expect("the script's JSON");
            assert_eq!(seen["desktop"]["lang"], locale);
            let headline = seen["phone"]["headline"].as_str().unwrap();
            let subject = email["Subject"].as_str().unwrap();
            assert_eq!(
                headline,
                format!("{subject}."),
                "the headline says what the subject says"
            );
        }
    }
}
