//! What the invitee reads: the email names who invited them, to which
//! account (its current name), in their language, with replies going to
//! the account; imports keep the inviter and language; the account's name
//! and reply-to address change through `PATCH /account`.

use crate::both_backends;
use crate::fakes::{self, use_postmark};
use crate::helpers::{assert_problem, wait_until, Backend, TestApp};
use reqwest::multipart::{Form, Part};
use serde_json::{json, Value};
use std::time::Duration;
use wiremock::MockServer;

both_backends!(
    backend:
    a_german_import_sends_a_german_email_naming_the_inviter,
    a_language_without_templates_falls_back_to_english,
    a_renamed_account_shows_in_the_next_email_with_its_reply_to,
    the_product_name_joins_the_subject,
    an_operator_adds_a_language_with_a_template_folder,
    a_retry_of_a_batch_says_what_its_first_try_said_after_a_rename,
    the_account_is_read_and_changed_with_patch,
    bad_account_changes_are_refused_and_change_nothing,
    a_raw_upload_takes_the_inviter_and_language_from_the_query,
    a_bad_inviter_or_language_is_refused_and_nothing_is_stored,
);

/// Every message the fake Postmark has received so far.
async fn postmark_messages(server: &MockServer) -> Vec<Value> {
    let mut messages = Vec::new();
    for request in server.received_requests().await.unwrap_or_default() {
        let batch: Vec<Value> = serde_json::from_slice(&request.body).expect("JSON");
        messages.extend(batch);
    }
    messages
}

/// Waits for the email to `to` and returns it.
async fn email_to(server: &MockServer, to: &str) -> Value {
    wait_until(Duration::from_secs(20), || async {
        postmark_messages(server)
            .await
            .into_iter()
            .find(|m| m["To"] == to)
    })
    .await
}

async fn patch_account(app: &TestApp, body: Value) -> reqwest::Response {
    app.client
        .patch(app.url("/account"))
        .bearer_auth(&app.api_key)
        .json(&body)
        .send()
        .await
        .expect("request")
}

fn form(file: &str, fields: &[(&str, &str)]) -> Form {
    let mut form = Form::new().part(
        "file",
        Part::bytes(file.as_bytes().to_vec()).file_name("team.txt"),
    );
    for (name, value) in fields {
        form = form.text(name.to_string(), value.to_string());
    }
    form
}

async fn a_german_import_sends_a_german_email_naming_the_inviter(backend: Backend) {
    let server = fakes::postmark(Duration::ZERO).await;
    let app = TestApp::spawn_with(backend, |c| use_postmark(c, &server)).await;

    let response = app
        .upload_form(form(
            "bob@x.io",
            &[
                ("invited_by", " Ann <Lee> & Co "),
                ("locale", "de-at"),
                ("message", "Willkommen!"),
            ],
        ))
        .await;
    assert_eq!(response.status(), 201);
    let import: Value = response.json().await.unwrap();
    assert_eq!(import["options"]["invited_by"], "Ann <Lee> & Co");
    assert_eq!(import["options"]["locale"], "de-AT");
    let email = email_to(&server, "bob@x.io").await;
    wait_until(Duration::from_secs(20), || async {
        (app.invitation_by_email("bob@x.io").status == "sent").then_some(())
    })
    .await;

    assert_eq!(
        email["Subject"],
        "Ann <Lee> & Co hat Sie eingeladen, Acme beizutreten"
    );
    let text = email["TextBody"].as_str().unwrap();
    assert!(
        text.starts_with("Ann <Lee> & Co hat Sie eingeladen, Acme beizutreten.\n\nAnn <Lee> & Co schreibt:\nWillkommen!\n\nEinladung annehmen:\nhttps://invite.test/"),
        "{text}"
    );
    let expires = app
        .invitation_by_email("bob@x.io")
        .expires_at
        .unwrap()
        .date();
    let months = [
        "Januar",
        "Februar",
        "März",
        "April",
        "Mai",
        "Juni",
        "Juli",
        "August",
        "September",
        "Oktober",
        "November",
        "Dezember",
    ];
    use chrono::Datelike;
    let date = format!(
        "{}. {} {}",
        expires.day(),
        months[expires.month0() as usize],
        expires.year()
    );
    assert!(
        text.contains(&format!("Diese Einladung läuft am {date} ab.")),
        "{text}"
    );
    let html = email["HtmlBody"].as_str().unwrap();
    assert!(html.contains("<html lang=\"de\">"));
    assert!(
        html.contains("Ann &lt;Lee&gt; &amp; Co hat Sie eingeladen, Acme beizutreten."),
        "{html}"
    );
    assert!(!html.contains("<Lee>"), "the inviter is escaped in HTML");
    assert!(html.contains(">Einladung annehmen</a>"));
    assert!(
        email.get("ReplyTo").is_none(),
        "no reply-to unless the account set one"
    );

    let id = import["id"].as_str().unwrap();
    let report: Value = app
        .get(&format!("/imports/{id}/report"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(report["import"]["options"]["invited_by"], "Ann <Lee> & Co");
    assert_eq!(report["import"]["options"]["locale"], "de-AT");
}

async fn a_language_without_templates_falls_back_to_english(backend: Backend) {
    let server = fakes::postmark(Duration::ZERO).await;
    let app = TestApp::spawn_with(backend, |c| use_postmark(c, &server)).await;

    let response = app
        .upload_form(form(
            "carol@x.io",
            &[("locale", "fr-CA"), ("invited_by", "Ann Lee")],
        ))
        .await;
    assert_eq!(response.status(), 201);
    let email = email_to(&server, "carol@x.io").await;
    wait_until(Duration::from_secs(20), || async {
        (app.invitation_by_email("carol@x.io").status == "sent").then_some(())
    })
    .await;

    assert_eq!(email["Subject"], "Ann Lee invited you to join Acme");
    let expires = app
        .invitation_by_email("carol@x.io")
        .expires_at
        .unwrap()
        .date();
    let english = expires.format("%-d %B %Y").to_string();
    let text = email["TextBody"].as_str().unwrap();
    assert!(
        text.contains(&format!("This invitation expires on {english}.")),
        "{text}"
    );
    assert!(email["HtmlBody"]
        .as_str()
        .unwrap()
        .contains("<html lang=\"en\">"));
}

async fn a_renamed_account_shows_in_the_next_email_with_its_reply_to(backend: Backend) {
    let server = fakes::postmark(Duration::ZERO).await;
    let app = TestApp::spawn_with(backend, |c| use_postmark(c, &server)).await;
    app.import("first@x.io").await;
    let first = email_to(&server, "first@x.io").await;
    assert_eq!(first["Subject"], "You're invited to join Acme");

    let patched = patch_account(
        &app,
        json!({"name": "  Smith & <Sons>  ", "reply_to": "Team@Smith.example"}),
    )
    .await;
    assert_eq!(patched.status(), 200);
    app.import("second@x.io").await;
    let second = email_to(&server, "second@x.io").await;

    assert_eq!(second["Subject"], "You're invited to join Smith & <Sons>");
    assert_eq!(second["ReplyTo"], "Team@smith.example");
    let html = second["HtmlBody"].as_str().unwrap();
    assert!(
        html.contains("You're invited to join Smith &amp; &lt;Sons&gt;."),
        "{html}"
    );
    assert!(!html.contains("<Sons>"));
    assert!(second["TextBody"]
        .as_str()
        .unwrap()
        .contains("was invited to Smith & <Sons>."));
}

async fn the_product_name_joins_the_subject(backend: Backend) {
    let server = fakes::postmark(Duration::ZERO).await;
    let app = TestApp::spawn_with(backend, |c| {
        use_postmark(c, &server);
        c.dispatch.product_name = Some("Orbit".into());
    })
    .await;
    app.upload_form(form("dan@x.io", &[("invited_by", "Ann Lee")]))
        .await;
    let email = email_to(&server, "dan@x.io").await;
    assert_eq!(
        email["Subject"],
        "Ann Lee invited you to join Acme on Orbit"
    );

    // An account named like the product is not named twice.
    patch_account(&app, json!({"name": "orbit"})).await;
    app.import("erin@x.io").await;
    let email = email_to(&server, "erin@x.io").await;
    assert_eq!(email["Subject"], "You're invited to join orbit");
}

async fn an_operator_adds_a_language_with_a_template_folder(backend: Backend) {
    let templates = tempfile::tempdir().unwrap();
    let fr = templates.path().join("fr");
    std::fs::create_dir(&fr).unwrap();
    let files = [
        ("subject.txt", "{% if invited_by %}{{ invited_by }} vous invite{% else %}Vous êtes invité{% endif %} à rejoindre {{ account_name }}"),
        ("body.txt", "Rejoindre {{ account_name }} : {{ accept_url }}\nCette invitation expire le {{ expires_at }}. ({{ email }}{{ message }}{{ product_name }})\n"),
        ("body.html", "<p>Rejoindre <a href=\"{{ accept_url }}\">{{ account_name }}</a> avant le {{ expires_at }}.</p>"),
    ];
    for (name, source) in files {
        std::fs::write(fr.join(name), source).unwrap();
    }
    let server = fakes::postmark(Duration::ZERO).await;
    let dir = templates.path().to_owned();
    let app = TestApp::spawn_with(backend, |c| {
        use_postmark(c, &server);
        c.dispatch.email_template_dir = Some(dir);
    })
    .await;

    app.upload_form(form(
        "zoe@x.io",
        &[("locale", "fr-CA"), ("invited_by", "Ann Lee")],
    ))
    .await;
    let email = email_to(&server, "zoe@x.io").await;

    assert_eq!(email["Subject"], "Ann Lee vous invite à rejoindre Acme");
    let text = email["TextBody"].as_str().unwrap();
    assert!(
        text.starts_with("Rejoindre Acme : https://invite.test/"),
        "{text}"
    );
    let months = [
        "janvier",
        "février",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "août",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
    ];
    assert!(
        months.iter().any(|m| text.contains(&format!(" {m} "))),
        "a French date: {text}"
    );
}

async fn a_retry_of_a_batch_says_what_its_first_try_said_after_a_rename(backend: Backend) {
    let slow_failure = wiremock::ResponseTemplate::new(500).set_delay(Duration::from_millis(1500));
    let server = fakes::postmark_after(slow_failure).await;
    let app = TestApp::spawn_with(backend, |c| use_postmark(c, &server)).await;
    app.import("fay@x.io").await;
    wait_until(Duration::from_secs(20), || async {
        let received = server.received_requests().await.unwrap_or_default();
        (!received.is_empty()).then_some(())
    })
    .await;

    // The first try is in flight (it will fail): rename now.
    let patched = patch_account(
        &app,
        json!({"name": "Renamed", "reply_to": "new@acme.example"}),
    )
    .await;
    assert_eq!(patched.status(), 200);
    let tries = wait_until(Duration::from_secs(20), || async {
        let messages = postmark_messages(&server).await;
        (messages.len() >= 2).then_some(messages)
    })
    .await;

    assert_eq!(tries[0], tries[1], "the retry is the same request");
    assert_eq!(tries[1]["Subject"], "You're invited to join Acme");
    assert!(tries[1].get("ReplyTo").is_none());
    app.import("gus@x.io").await;
    let next = email_to(&server, "gus@x.io").await;
    assert_eq!(next["Subject"], "You're invited to join Renamed");
    assert_eq!(next["ReplyTo"], "new@acme.example");
}

async fn the_account_is_read_and_changed_with_patch(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let account: Value = app.get("/account").await.json().await.unwrap();
    assert_eq!(account["name"], "Acme");
    assert_eq!(account["reply_to"], Value::Null);

    let other_key = app.create_account("Globex");
    let changed: Value = patch_account(&app, json!({"reply_to": "hello@acme.example"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (changed["name"].as_str(), changed["reply_to"].as_str()),
        (Some("Acme"), Some("hello@acme.example"))
    );
    let changed: Value = patch_account(&app, json!({"name": "Acme Robotics"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        changed["reply_to"], "hello@acme.example",
        "a field left out stays"
    );
    let cleared: Value = patch_account(&app, json!({"reply_to": null}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(cleared["reply_to"], Value::Null);
    let read: Value = app.get("/account").await.json().await.unwrap();
    assert_eq!(read["name"], "Acme Robotics");
    let other: Value = app
        .get_as(&other_key, "/account")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(other["name"], "Globex", "another account is untouched");

    let anonymous = app.client.get(app.url("/account")).send().await.unwrap();
    assert_problem(anonymous, 401, "unauthorized").await;
}

async fn bad_account_changes_are_refused_and_change_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let long = "x".repeat(101);
    let cases = [
        (json!({"name": ""}), "invalid-account-name"),
        (json!({"name": "   "}), "invalid-account-name"),
        (json!({"name": long}), "invalid-account-name"),
        (json!({"name": "Acme\nBcc: x"}), "invalid-account-name"),
        (json!({"name": 7}), "invalid-json"),
        (json!({"reply_to": "not-an-address"}), "invalid-reply-to"),
        (json!({"reply_to": ""}), "invalid-reply-to"),
        (
            json!({"reply_to": "a@b.c\r\nBcc: x@y.z"}),
            "invalid-reply-to",
        ),
        (
            json!({"name": "Fine", "reply_to": "nope@"}),
            "invalid-reply-to",
        ),
        (json!({"nmae": "Typo"}), "invalid-json"),
        (json!(["Acme"]), "invalid-json"),
    ];
    for (body, slug) in cases {
        let response = patch_account(&app, body.clone()).await;
        assert_eq!(response.status(), 400, "{body}");
        let detail = assert_problem(response, 400, slug).await;
        assert!(!detail.is_empty(), "{body}");
    }
    let response = app
        .client
        .patch(app.url("/account"))
        .bearer_auth(&app.api_key)
        .header("Content-Type", "text/plain")
        .body("name=x")
        .send()
        .await
        .unwrap();
    assert_problem(response, 415, "unsupported-media-type").await;
    let account: Value = app.get("/account").await.json().await.unwrap();
    assert_eq!(
        (account["name"].as_str(), &account["reply_to"]),
        (Some("Acme"), &Value::Null)
    );
}

async fn a_raw_upload_takes_the_inviter_and_language_from_the_query(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app
        .client
        .post(app.url("/imports?invited_by=Ann%20Lee&locale=pt_br"))
        .bearer_auth(&app.api_key)
        .header("Content-Type", "text/plain")
        .body("ann@x.io")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let import: Value = response.json().await.unwrap();
    assert_eq!(import["options"]["invited_by"], "Ann Lee");
    assert_eq!(import["options"]["locale"], "pt-BR");
    let id = import["id"].as_str().unwrap();
    let again: Value = app
        .get(&format!("/imports/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["options"], import["options"]);
}

async fn a_bad_inviter_or_language_is_refused_and_nothing_is_stored(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let long = "y".repeat(101);
    let cases: [(&str, &str); 5] = [
        ("invited_by", &long),
        ("invited_by", "Ann\u{1b}[31mLee"),
        ("invited_by", "Ann\u{202e}eeL"),
        ("locale", "english"),
        ("locale", "de--AT"),
    ];
    for (field, value) in cases {
        let response = app.upload_form(form("ann@x.io", &[(field, value)])).await;
        let detail = assert_problem(response, 400, "invalid-option").await;
        assert!(detail.contains(field), "{detail}");
    }
    let query = app
        .client
        .post(app.url("/imports?locale=klingon-language"))
        .bearer_auth(&app.api_key)
        .header("Content-Type", "text/plain")
        .body("ann@x.io")
        .send()
        .await
        .unwrap();
    assert_problem(query, 400, "invalid-option").await;
    assert_eq!(app.count_rows("imports"), 0);
}
