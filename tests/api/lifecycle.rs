//! The invitation's life after sending: accepting, expiring, revoking,
//! resending and cancelling, each reflected in the report and the counts.

use crate::both_backends;
use crate::fakes::{self, PostmarkBatch};
use crate::helpers::{assert_problem, counts, statuses, wait_until, Backend, TestApp};
use bulk_invite::config::ServeConfig;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use wiremock::MockServer;

both_backends!(
    backend:
    an_accepted_invitation_makes_a_user_and_its_link_works_once,
    unknown_and_used_tokens_are_refused_alike_in_time,
    an_expired_invitation_is_reported_refused_and_no_longer_blocks_a_new_one,
    a_revoked_invitation_stops_its_link_and_only_its_account_can_revoke_it,
    a_resent_invitation_gets_a_new_link_and_the_old_one_stops,
    cancelling_an_import_revokes_what_is_still_queued,
    import_options_reach_the_email_the_expiry_and_the_accept_answer,
    bad_import_options_are_refused_and_nothing_is_stored,
    invitations_can_be_listed_and_filtered,
    an_address_lists_its_closed_and_open_invitations_in_order,
    concurrent_accepts_of_one_link_make_one_user,
    counts_agree_with_the_invitations_after_racing_accepts_revokes_and_resends,
);

pub(crate) fn dispatching(config: &mut ServeConfig, server: &MockServer) {
    fakes::use_postmark(config, server);
    config.dispatch.expiry_sweep_secs = 0;
    config.allowed_redirect_origins = vec!["https://app.test".into()];
}

pub(crate) async fn spawn(backend: Backend) -> (TestApp, MockServer) {
    let server = fakes::postmark(Duration::ZERO).await;
    let app = TestApp::spawn_with(backend, |c| dispatching(c, &server)).await;
    (app, server)
}

/// The newest accept token sent to each address.
pub(crate) async fn tokens(server: &MockServer) -> HashMap<String, String> {
    let mut tokens = HashMap::new();
    for request in server.received_requests().await.unwrap_or_default() {
        let messages: Vec<Value> = serde_json::from_slice(&request.body).unwrap();
        for m in messages {
            let text = m["TextBody"].as_str().unwrap();
            let link = text.lines().find(|l| l.contains("/accept/")).unwrap();
            let token = link.rsplit('/').next().unwrap().to_owned();
            tokens.insert(m["To"].as_str().unwrap().to_owned(), token);
        }
    }
    tokens
}

pub(crate) async fn import_settled(app: &TestApp, body: &str) -> Value {
    let import = app.import(body.to_owned()).await;
    let path = format!("/imports/{}", import["id"].as_str().unwrap());
    wait_until(Duration::from_secs(20), || async {
        let current: Value = app.get(&path).await.json().await.unwrap();
        (current["status"] == "completed").then_some(current)
    })
    .await
}

pub(crate) async fn import_of(app: &TestApp, id: &str) -> Value {
    app.get(&format!("/imports/{id}"))
        .await
        .json()
        .await
        .unwrap()
}

pub(crate) async fn post(app: &TestApp, path: &str) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .bearer_auth(&app.api_key)
        .send()
        .await
        .unwrap()
}

async fn accept(app: &TestApp, token: &str) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/accept/{token}")))
        .send()
        .await
        .unwrap()
}

async fn an_accepted_invitation_makes_a_user_and_its_link_works_once(backend: Backend) {
    let (app, server) = spawn(backend).await;
    let import = import_settled(&app, "ann@x.io\nbob@y.io").await;
    let token = tokens(&server).await["ann@x.io"].clone();

    let preview = app
        .client
        .get(app.url(&format!("/accept/{token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(preview.status(), 200);
    let preview: Value = preview.json().await.unwrap();
    assert_eq!(
        (preview["account_name"].as_str(), preview["email"].as_str()),
        (Some("Acme"), Some("ann@x.io"))
    );
    assert!(preview["expires_at"].is_string());
    let accepted = accept(&app, &token).await;
    assert_eq!(accepted.status(), 200);
    let accepted: Value = accepted.json().await.unwrap();
    assert_eq!(accepted["status"], "accepted");

    let again = accept(&app, &token).await;
    assert_problem(again, 410, "invitation-used").await;
    let id = import["id"].as_str().unwrap();
    let after = import_of(&app, id).await;
    let c = counts(&after);
    assert_eq!(
        (c["accepted"].as_i64(), c["sent"].as_i64()),
        (Some(1), Some(1))
    );
    assert_eq!(statuses(&app.report(id).await), ["accepted", "sent"]);
    let users: Value = app.get("/users").await.json().await.unwrap();
    assert_eq!(users["users"][0]["email"], "ann@x.io");
    assert_eq!(users["users"][0]["id"], accepted["user_id"]);
    let later = app.import("ann@x.io").await;
    assert_eq!(counts(&later)["existing_user"], 1);
}

async fn unknown_and_used_tokens_are_refused_alike_in_time(backend: Backend) {
    let (app, server) = spawn(backend).await;
    import_settled(&app, "ann@x.io").await;
    let token = tokens(&server).await["ann@x.io"].clone();
    assert_eq!(accept(&app, &token).await.status(), 200);

    let started = Instant::now();
    assert_problem(
        accept(&app, "no-such-token").await,
        404,
        "invitation-not-found",
    )
    .await;
    let unknown = started.elapsed();
    let started = Instant::now();
    assert_problem(accept(&app, &token).await, 410, "invitation-used").await;
    let used = started.elapsed();

    for took in [unknown, used] {
        assert!(
            took >= Duration::from_millis(150),
            "a refusal took only {took:?}"
        );
    }
    assert!(
        unknown.abs_diff(used) < Duration::from_millis(100),
        "{unknown:?} vs {used:?}"
    );
}

async fn an_expired_invitation_is_reported_refused_and_no_longer_blocks_a_new_one(
    backend: Backend,
) {
    let (app, server) = spawn(backend).await;
    let import = import_settled(&app, "ann@x.io").await;
    let token = tokens(&server).await["ann@x.io"].clone();
    app.execute("UPDATE invitations SET expires_at = '2000-01-01 00:00:00'");

    let id = import["id"].as_str().unwrap().to_owned();
    let expired = wait_until(Duration::from_secs(20), || async {
        let current = import_of(&app, &id).await;
        (current["counts"]["expired"] == 1).then_some(current)
    })
    .await;

    assert_eq!(counts(&expired)["sent"], 0);
    assert_eq!(statuses(&app.report(&id).await), ["expired"]);
    assert_problem(accept(&app, &token).await, 410, "invitation-expired").await;
    let again = app.import("ann@x.io").await;
    assert_eq!(
        counts(&again)["queued"],
        1,
        "an expired invitation does not block a new one"
    );
}

async fn a_revoked_invitation_stops_its_link_and_only_its_account_can_revoke_it(backend: Backend) {
    let (app, server) = spawn(backend).await;
    let import = import_settled(&app, "ann@x.io").await;
    let token = tokens(&server).await["ann@x.io"].clone();
    let invitation = app.invitation_by_email("ann@x.io");
    let path = format!("/invitations/{}", invitation.id);
    let other = app.create_account("Globex");

    let theirs = app
        .client
        .delete(app.url(&path))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_problem(theirs, 404, "not-found").await;
    let revoked = app
        .client
        .delete(app.url(&path))
        .bearer_auth(&app.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    let revoked: Value = revoked.json().await.unwrap();
    assert_eq!(revoked["status"], "revoked");

    assert_problem(accept(&app, &token).await, 410, "invitation-revoked").await;
    let twice = app
        .client
        .delete(app.url(&path))
        .bearer_auth(&app.api_key)
        .send()
        .await
        .unwrap();
    assert_problem(twice, 409, "invitation-state").await;
    let after = import_of(&app, import["id"].as_str().unwrap()).await;
    assert_eq!(
        (
            counts(&after)["revoked"].as_i64(),
            after["counts"]["sent"].as_i64()
        ),
        (Some(1), Some(0))
    );
}

async fn a_resent_invitation_gets_a_new_link_and_the_old_one_stops(backend: Backend) {
    let server = fakes::postmark_after(PostmarkBatch {
        inactive: HashSet::from(["ann@x.io".to_owned()]),
        delay: Duration::ZERO,
    })
    .await;
    let app = TestApp::spawn_with(backend, |c| dispatching(c, &server)).await;
    let import = import_settled(&app, "ann@x.io\nbob@y.io").await;
    let id = import["id"].as_str().unwrap().to_owned();
    assert_eq!(counts(&import)["failed"], 1);

    let resent = post(&app, &format!("/imports/{id}/resend")).await;
    assert_eq!(resent.status(), 200);
    let resent: Value = resent.json().await.unwrap();
    assert_eq!(resent["changed"], 1);
    let done = wait_until(Duration::from_secs(20), || async {
        let current = import_of(&app, &id).await;
        (current["counts"]["sent"] == 2).then_some(current)
    })
    .await;
    assert_eq!(
        (done["status"].as_str(), counts(&done)["failed"].as_i64()),
        (Some("completed"), Some(0))
    );

    let old = tokens(&server).await["bob@y.io"].clone();
    let bob = app.invitation_by_email("bob@y.io");
    let single = post(&app, &format!("/invitations/{}/resend", bob.id)).await;
    assert_eq!(single.status(), 200);
    wait_until(Duration::from_secs(20), || async {
        (app.invitation_by_email("bob@y.io").status == "sent").then_some(())
    })
    .await;
    let new = tokens(&server).await["bob@y.io"].clone();
    assert_ne!(old, new);
    assert_problem(accept(&app, &old).await, 404, "invitation-not-found").await;
    assert_eq!(accept(&app, &new).await.status(), 200);
    let accepted = post(&app, &format!("/invitations/{}/resend", bob.id)).await;
    assert_problem(accepted, 409, "invitation-state").await;
}

async fn cancelling_an_import_revokes_what_is_still_queued(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let import = app.import("ann@x.io\nbob@y.io\nnope").await;
    let id = import["id"].as_str().unwrap();

    let response = post(&app, &format!("/imports/{id}/cancel")).await;

    assert_eq!(response.status(), 200);
    let action: Value = response.json().await.unwrap();
    assert_eq!(action["changed"], 2);
    let after = &action["import"];
    assert_eq!(after["status"], "completed");
    assert_eq!(
        (
            counts(after)["revoked"].as_i64(),
            after["counts"]["queued"].as_i64()
        ),
        (Some(2), Some(0))
    );
    assert_eq!(
        statuses(&app.report(id).await),
        ["revoked", "revoked", "invalid"]
    );
    assert_eq!(app.count_where("invitations", "status = 'queued'"), 0);
}

async fn import_options_reach_the_email_the_expiry_and_the_accept_answer(backend: Backend) {
    let (app, server) = spawn(backend).await;
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(b"ann@x.io".to_vec()).file_name("t.txt"),
        )
        .text("message", "Welcome to the <team>!")
        .text("expires_in_days", "2")
        .text("redirect_url", "https://app.test/welcome");
    let response = app
        .client
        .post(app.url("/imports"))
        .bearer_auth(&app.api_key)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let import: Value = response.json().await.unwrap();
    assert_eq!(import["options"]["expires_in_days"], 2);
    wait_until(Duration::from_secs(20), || async {
        (app.invitation_by_email("ann@x.io").status == "sent").then_some(())
    })
    .await;

    let requests = server.received_requests().await.unwrap();
    let sent: Vec<Value> = serde_json::from_slice(&requests[0].body).unwrap();
    assert!(sent[0]["TextBody"]
        .as_str()
        .unwrap()
        .contains("Welcome to the <team>!"));
    assert!(sent[0]["HtmlBody"]
        .as_str()
        .unwrap()
        .contains("Welcome to the &lt;team&gt;!"));
    let stored = app.invitation_by_email("ann@x.io");
    let lasts = stored.expires_at.unwrap() - stored.sent_at.unwrap();
    assert_eq!(lasts, chrono::Duration::days(2));
    let token = tokens(&server).await["ann@x.io"].clone();
    let accepted: Value = accept(&app, &token).await.json().await.unwrap();
    assert_eq!(accepted["redirect_url"], "https://app.test/welcome");
}

async fn bad_import_options_are_refused_and_nothing_is_stored(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.allowed_redirect_origins = vec!["https://app.test".into()]
    })
    .await;
    for query in [
        "expires_in_days=0",
        "expires_in_days=31",
        "redirect_url=https://evil.test/",
        "redirect_url=javascript:alert(1)",
    ] {
        let response = app
            .client
            .post(app.url(&format!("/imports?{query}")))
            .bearer_auth(&app.api_key)
            .header("Content-Type", "text/plain")
            .body("ann@x.io")
            .send()
            .await
            .unwrap();
        assert_problem(response, 400, "invalid-option").await;
    }
    assert_eq!(app.count_rows("imports"), 0);
}

/// An address's invitations live in two indexes (open, and closed once
/// revoked, accepted, failed or expired); asking for the address finds
/// both, oldest first, across pages and with a status filter.
async fn an_address_lists_its_closed_and_open_invitations_in_order(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let first = app.import("bob@y.io\nann@x.io").await;
    let cancelled = post(
        &app,
        &format!("/imports/{}/cancel", first["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(cancelled.status(), 200);
    app.import("Bob@Y.io").await;

    let list = |query: String| {
        let app = &app;
        async move {
            let page: Value = app
                .get(&format!("/invitations?{query}"))
                .await
                .json()
                .await
                .unwrap();
            let statuses: Vec<String> = page["invitations"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| {
                    format!(
                        "{} {}",
                        i["email"].as_str().unwrap(),
                        i["status"].as_str().unwrap()
                    )
                })
                .collect();
            (statuses, page["next_cursor"].as_str().map(str::to_owned))
        }
    };
    let (both, _) = list("email=BOB@y.io".into()).await;
    assert_eq!(both, ["bob@y.io revoked", "Bob@y.io queued"]);
    let (one, cursor) = list("email=bob@y.io&limit=1".into()).await;
    assert_eq!(one, ["bob@y.io revoked"]);
    let (next, end) = list(format!("email=bob@y.io&limit=1&cursor={}", cursor.unwrap())).await;
    assert_eq!((next, end), (vec!["Bob@y.io queued".to_owned()], None));
    let (open, _) = list("email=bob@y.io&status=queued".into()).await;
    assert_eq!(open, ["Bob@y.io queued"]);
    let (closed, _) = list("email=bob@y.io&status=revoked&status=accepted".into()).await;
    assert_eq!(closed, ["bob@y.io revoked"]);
}

async fn invitations_can_be_listed_and_filtered(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let first = app.import("ann@x.io\nbob@y.io\ncarol@z.io").await;
    app.import("dave@w.io").await;
    let other = app.create_account("Globex");

    let page: Value = app.get("/invitations?limit=2").await.json().await.unwrap();
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest: Value = app
        .get(&format!("/invitations?limit=2&cursor={cursor}"))
        .await
        .json()
        .await
        .unwrap();
    let emails: Vec<&str> = page["invitations"]
        .as_array()
        .unwrap()
        .iter()
        .chain(rest["invitations"].as_array().unwrap())
        .map(|i| i["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["ann@x.io", "bob@y.io", "carol@z.io", "dave@w.io"]);

    let by_email: Value = app
        .get("/invitations?email=BOB@Y.IO")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(by_email["invitations"].as_array().unwrap().len(), 1);
    let by_import: Value = app
        .get(&format!(
            "/invitations?import_id={}&status=queued",
            first["id"].as_str().unwrap()
        ))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(by_import["invitations"].as_array().unwrap().len(), 3);
    let none: Value = app
        .get("/invitations?status=accepted")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(none["invitations"], serde_json::json!([]));
    let theirs: Value = app
        .get_as(&other, "/invitations")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(theirs["invitations"], serde_json::json!([]));
    assert_problem(
        app.get("/invitations?email=nope").await,
        400,
        "invalid-email",
    )
    .await;
}

async fn concurrent_accepts_of_one_link_make_one_user(backend: Backend) {
    let (app, server) = spawn(backend).await;
    let import = import_settled(&app, "ann@x.io").await;
    let token = tokens(&server).await["ann@x.io"].clone();

    let attempts = (0..8).map(|_| accept(&app, &token));
    let answers: Vec<u16> = futures_util::future::join_all(attempts)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();

    assert_eq!(
        answers.iter().filter(|s| **s == 200).count(),
        1,
        "{answers:?}"
    );
    assert!(
        answers.iter().all(|s| *s == 200 || *s == 410),
        "{answers:?}"
    );
    assert_eq!(app.count_rows("users"), 1);
    let after = import_of(&app, import["id"].as_str().unwrap()).await;
    assert_eq!(
        (
            counts(&after)["accepted"].as_i64(),
            after["counts"]["sent"].as_i64()
        ),
        (Some(1), Some(0))
    );
}

async fn counts_agree_with_the_invitations_after_racing_accepts_revokes_and_resends(
    backend: Backend,
) {
    let (app, server) = spawn(backend).await;
    let emails: Vec<String> = (0..12).map(|n| format!("p{n}@x.io")).collect();
    let import = import_settled(&app, &emails.join("\n")).await;
    let id = import["id"].as_str().unwrap().to_owned();
    let tokens = tokens(&server).await;

    let mut races = Vec::new();
    for email in &emails {
        let invitation = app.invitation_by_email(email).id;
        let token = tokens[email].clone();
        let app = &app;
        races.push(async move {
            let revoke = app
                .client
                .delete(app.url(&format!("/invitations/{invitation}")))
                .bearer_auth(&app.api_key)
                .send();
            let resend_path = format!("/invitations/{invitation}/resend");
            let resend = post(app, &resend_path);
            let (a, b, c) = tokio::join!(accept(app, &token), revoke, resend);
            [
                a.status().as_u16(),
                b.unwrap().status().as_u16(),
                c.status().as_u16(),
            ]
        });
    }
    let answers = futures_util::future::join_all(races).await;
    assert!(
        answers
            .iter()
            .flatten()
            .all(|s| [200, 409, 410, 404].contains(s)),
        "{answers:?}"
    );
    wait_until(Duration::from_secs(20), || async {
        (app.count_where("invitations", "status = 'queued'") == 0).then_some(())
    })
    .await;

    let current = import_of(&app, &id).await;
    let c = counts(&current);
    for status in ["sent", "accepted", "revoked", "queued"] {
        let stored = app.count_where(
            "invitations",
            &format!("status = '{status}' AND import_id = '{id}'"),
        );
        assert_eq!(c[status].as_i64(), Some(stored), "{status}: {current}");
        let entries = app.count_where(
            "import_entries",
            &format!("status = '{status}' AND import_id = '{id}'"),
        );
        assert_eq!(entries, stored, "report entries in {status}");
    }
}
