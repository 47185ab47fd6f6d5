//! The invitee's side: the link in the email answers a browser with pages
//! and an API client with JSON, on the new path and the old one, with the
//! same refusals, floor and safety headers either way.

use crate::both_backends;
use crate::fakes;
use crate::helpers::{assert_problem, wait_until, Backend, TestApp};
use bulk_invite::config::ServeConfig;
use reqwest::Response;
use serde_json::Value;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use wiremock::MockServer;

both_backends!(
    backend:
    a_browser_gets_the_accept_page_and_an_api_client_json,
    a_browser_form_post_accepts_and_shows_the_confirmation,
    a_browser_form_post_is_redirected_to_the_imports_redirect_url,
    refusal_pages_keep_the_status_the_floor_and_the_headers,
    links_in_emails_already_sent_keep_working_on_the_old_path,
    emails_link_to_the_frontend_when_an_accept_url_template_is_set,
    the_token_never_reaches_the_log,
    the_page_speaks_the_invitations_language_else_the_browsers,
);

/// What a browser's navigation sends.
pub const BROWSER_ACCEPT: &str =
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8";

/// An app sending through a fake Postmark, with links under
/// `https://invite.test` and redirects allowed to `origins`.
pub async fn inviting(
    backend: Backend,
    origins: Vec<String>,
    configure: impl FnOnce(&mut ServeConfig),
) -> (TestApp, MockServer) {
    let server = fakes::postmark(Duration::ZERO).await;
    let app = TestApp::spawn_with(backend, |c| {
        fakes::use_postmark(c, &server);
        c.allowed_redirect_origins = origins;
        configure(c);
    })
    .await;
    (app, server)
}

/// Imports `email` with the given form fields and waits until it is sent.
pub async fn invite(app: &TestApp, email: &str, fields: &[(&str, &str)]) {
    let mut form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(email.as_bytes().to_vec()).file_name("t.txt"),
    );
    for (name, value) in fields {
        form = form.text(name.to_string(), value.to_string());
    }
    assert_eq!(app.upload_form(form).await.status(), 201);
    wait_until(Duration::from_secs(20), || async {
        (app.invitation_by_email(email).status == "sent").then_some(())
    })
    .await;
}

/// The accept link of the newest email to each address, from the fake's outbox.
pub async fn links(server: &MockServer) -> HashMap<String, String> {
    let mut links = HashMap::new();
    for request in server.received_requests().await.unwrap_or_default() {
        let messages: Vec<Value> = serde_json::from_slice(&request.body).unwrap();
        for m in messages {
            let text = m["TextBody"].as_str().unwrap();
            let link = text
                .lines()
                .map(str::trim)
                .find(|l| l.starts_with("https://"))
                .expect("a link in the email");
            links.insert(m["To"].as_str().unwrap().to_owned(), link.to_owned());
        }
    }
    links
}

/// The token at the end of an accept link.
pub fn token_of(link: &str) -> String {
    link.rsplit(['/', '=']).next().unwrap().to_owned()
}

async fn get(app: &TestApp, path: &str, accept: &str) -> Response {
    app.client
        .get(app.url(path))
        .header("Accept", accept)
        .send()
        .await
        .unwrap()
}

async fn form_post(app: &TestApp, path: &str) -> Response {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(app.url(path))
        .header("Accept", BROWSER_ACCEPT)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Origin", "https://elsewhere.test")
        .body("")
        .send()
        .await
        .unwrap()
}

fn header<'a>(response: &'a Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

/// The safety headers every accept answer carries; the page's CSP allows
/// only its own style (by hash), no script, no framing.
fn assert_safe(response: &Response, page: bool) {
    assert_eq!(header(response, "cache-control"), "no-store");
    assert_eq!(header(response, "referrer-policy"), "no-referrer");
    assert_eq!(header(response, "x-content-type-options"), "nosniff");
    let csp = header(response, "content-security-policy");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(
        !csp.contains("script-src") && !csp.contains("unsafe-"),
        "{csp}"
    );
    if page {
        assert!(csp.contains("style-src 'sha256-"), "{csp}");
        assert_eq!(header(response, "content-type"), "text/html; charset=utf-8");
    }
}

async fn a_browser_gets_the_accept_page_and_an_api_client_json(backend: Backend) {
    let (app, server) = inviting(backend, vec![], |_| {}).await;
    invite(
        &app,
        "ann@x.io",
        &[("message", "Welcome to <the> team & more")],
    )
    .await;
    let link = links(&server).await["ann@x.io"].clone();
    assert!(link.starts_with("https://invite.test/accept/"), "{link}");
    let path = format!("/accept/{}", token_of(&link));

    let page = get(&app, &path, BROWSER_ACCEPT).await;
    assert_eq!(page.status(), 200);
    assert_safe(&page, true);
    assert!(header(&page, "content-security-policy").contains("form-action 'self';"));
    assert!(header(&page, "vary").contains("Accept"));
    let html = page.text().await.unwrap();
    assert!(html.contains("<html lang=\"en\">"));
    assert!(html.contains("<title>Join Acme</title>"));
    assert!(html.contains("<h1>Acme</h1>"));
    assert!(html.contains("ann@x.io"));
    assert!(html.contains("Welcome to &lt;the&gt; team &amp; more"));
    assert!(html.contains("<form method=\"post\">"));
    assert!(html.contains("Accept invitation</button>"));
    assert!(html.contains("<time datetime=\""));
    assert!(!html.contains("<script"));

    for accept in [
        "application/json",
        "*/*",
        "application/json, text/html;q=0.5",
    ] {
        let json = get(&app, &path, accept).await;
        assert_eq!(json.status(), 200, "{accept}");
        assert_safe(&json, false);
        assert_eq!(header(&json, "content-type"), "application/json");
        let preview: Value = json.json().await.unwrap();
        assert_eq!(preview["account_name"], "Acme");
        assert_eq!(preview["message"], "Welcome to <the> team & more");
    }
    let bare = app.client.get(app.url(&path)).send().await.unwrap();
    assert_eq!(header(&bare, "content-type"), "application/json");
}

async fn a_browser_form_post_accepts_and_shows_the_confirmation(backend: Backend) {
    let (app, server) = inviting(backend, vec![], |_| {}).await;
    invite(&app, "ann@x.io", &[]).await;
    let path = format!("/accept/{}", token_of(&links(&server).await["ann@x.io"]));

    let done = form_post(&app, &path).await;
    assert_eq!(done.status(), 200);
    assert_safe(&done, true);
    let html = done.text().await.unwrap();
    assert!(html.contains("<h1>You joined Acme</h1>"), "{html}");
    assert_eq!(app.count_where("users", "email = 'ann@x.io'"), 1);
    assert_eq!(app.invitation_by_email("ann@x.io").status, "accepted");

    let again = get(&app, &path, BROWSER_ACCEPT).await;
    assert_eq!(again.status(), 410);
    assert_safe(&again, true);
    assert!(header(&again, "content-security-policy").contains("form-action 'none'"));
    let html = again.text().await.unwrap();
    assert!(html.contains("<h1>Invitation already used</h1>"));
    assert!(html.contains("Sign in"));
    let twice = form_post(&app, &path).await;
    assert_eq!(twice.status(), 410);
    assert_eq!(app.count_where("users", "email = 'ann@x.io'"), 1);
}

async fn a_browser_form_post_is_redirected_to_the_imports_redirect_url(backend: Backend) {
    let (app, server) = inviting(backend, vec!["https://app.test".into()], |_| {}).await;
    invite(
        &app,
        "ann@x.io",
        &[("redirect_url", "https://app.test/welcome")],
    )
    .await;
    let path = format!("/accept/{}", token_of(&links(&server).await["ann@x.io"]));

    let page = get(&app, &path, BROWSER_ACCEPT).await;
    let csp = header(&page, "content-security-policy");
    assert!(
        csp.contains("form-action 'self' https://app.test;"),
        "{csp}"
    );

    let done = form_post(&app, &path).await;
    assert_eq!(done.status(), 303);
    assert_eq!(header(&done, "location"), "https://app.test/welcome");
    assert_eq!(header(&done, "referrer-policy"), "no-referrer");
    assert_eq!(header(&done, "cache-control"), "no-store");
    assert_eq!(app.invitation_by_email("ann@x.io").status, "accepted");

    let again = get(&app, &path, BROWSER_ACCEPT).await;
    assert_eq!(again.status(), 410);
    let html = again.text().await.unwrap();
    assert!(
        html.contains("href=\"https:&#x2f;&#x2f;app.test&#x2f;welcome\""),
        "{html}"
    );
}

async fn refusal_pages_keep_the_status_the_floor_and_the_headers(backend: Backend) {
    let (app, server) = inviting(backend, vec![], |_| {}).await;
    invite(&app, "ann@x.io", &[]).await;
    invite(&app, "bob@x.io", &[]).await;
    let links = links(&server).await;
    let (ann, bob) = (token_of(&links["ann@x.io"]), token_of(&links["bob@x.io"]));
    let bob_id = app.invitation_by_email("bob@x.io").id;
    let revoked = app
        .client
        .delete(app.url(&format!("/invitations/{bob_id}")))
        .bearer_auth(&app.api_key)
        .send()
        .await
        .unwrap();
    assert!(revoked.status().is_success());
    app.execute(
        "UPDATE invitations SET expires_at = '2000-01-01 00:00:00' WHERE email = 'ann@x.io'",
    );

    let table = [
        (
            "no-such-token".to_owned(),
            404,
            "Invitation not found",
            "invitation-not-found",
        ),
        (ann, 410, "Invitation expired", "invitation-expired"),
        (bob, 410, "Invitation withdrawn", "invitation-revoked"),
    ];
    for (token, status, title, slug) in table {
        let path = format!("/accept/{token}");
        for post in [false, true] {
            let started = Instant::now();
            let page = match post {
                false => get(&app, &path, BROWSER_ACCEPT).await,
                true => form_post(&app, &path).await,
            };
            assert!(started.elapsed() >= Duration::from_millis(150), "{title}");
            assert_eq!(page.status(), status, "{title}");
            assert_safe(&page, true);
            let html = page.text().await.unwrap();
            assert!(html.contains(&format!("<h1>{title}</h1>")), "{html}");
            assert!(html.contains("<title>"));
        }
        let started = Instant::now();
        let json = get(&app, &path, "application/json").await;
        assert!(started.elapsed() >= Duration::from_millis(150));
        assert_safe(&json, false);
        assert_problem(json, status, slug).await;
    }
    assert_eq!(app.count_rows("users"), 0);
}

async fn links_in_emails_already_sent_keep_working_on_the_old_path(backend: Backend) {
    let (app, server) = inviting(backend, vec![], |_| {}).await;
    invite(&app, "ann@x.io", &[]).await;
    let old = format!(
        "/invitations/accept/{}",
        token_of(&links(&server).await["ann@x.io"])
    );

    let page = get(&app, &old, BROWSER_ACCEPT).await;
    assert_eq!(page.status(), 200);
    assert_safe(&page, true);
    assert!(page.text().await.unwrap().contains("<h1>Acme</h1>"));
    let json = get(&app, &old, "application/json").await;
    assert_eq!(json.json::<Value>().await.unwrap()["email"], "ann@x.io");

    let put = app.client.put(app.url(&old)).send().await.unwrap();
    assert_eq!(header(&put, "allow"), "GET, POST");
    assert_problem(put, 405, "method-not-allowed").await;

    let accepted = app.client.post(app.url(&old)).send().await.unwrap();
    assert_eq!(accepted.status(), 200);
    assert_eq!(
        accepted.json::<Value>().await.unwrap()["status"],
        "accepted"
    );
    let spec: Value = app.get("/openapi.json").await.json().await.unwrap();
    assert!(spec["paths"]["/accept/{token}"]["post"].is_object());
    assert!(spec["paths"]["/invitations/accept/{token}"].is_null());
}

async fn emails_link_to_the_frontend_when_an_accept_url_template_is_set(backend: Backend) {
    let (app, server) = inviting(backend, vec![], |c| {
        c.dispatch.accept_url_template = Some("https://app.test/join?token={token}".into());
    })
    .await;
    invite(&app, "ann@x.io", &[]).await;
    let link = links(&server).await["ann@x.io"].clone();
    let token = link
        .strip_prefix("https://app.test/join?token=")
        .unwrap_or_else(|| panic!("{link}"));
    // The frontend's page then calls the JSON endpoints with the token.
    let accepted = app
        .client
        .post(app.url(&format!("/accept/{token}")))
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 200);
    assert_eq!(app.invitation_by_email("ann@x.io").status, "accepted");
}

async fn the_token_never_reaches_the_log(backend: Backend) {
    let (app, server) = inviting(backend, vec![], |_| {}).await;
    invite(&app, "ann@x.io", &[]).await;
    let token = token_of(&links(&server).await["ann@x.io"]);
    let log = tempfile::NamedTempFile::new().unwrap();
    let served = crate::served::Served::start_logging(
        &app,
        &[("RUST_LOG", "debug"), ("LOG_FORMAT", "json")],
        log.path(),
    )
    .await;
    let client = reqwest::Client::new();
    for path in [
        format!("/accept/{token}"),
        format!("/invitations/accept/{token}"),
    ] {
        let page = client
            .get(served.url(&path))
            .header("Accept", BROWSER_ACCEPT)
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
    }
    let accepted = client
        .post(served.url(&format!("/accept/{token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 200);
    drop(served);

    let logged = std::fs::read_to_string(log.path()).unwrap();
    assert!(logged.contains("invitation accepted"), "{logged}");
    assert!(logged.contains("/accept/{token}"), "{logged}");
    assert!(!logged.contains(&token), "the token was logged:\n{logged}");
}

async fn the_page_speaks_the_invitations_language_else_the_browsers(backend: Backend) {
    let (app, server) = inviting(backend, vec![], |_| {}).await;
    invite(&app, "anna@x.io", &[("locale", "de-AT")]).await;
    invite(&app, "bob@x.io", &[]).await;
    let links = links(&server).await;
    let page = |email: &str, language: &'static str| {
        let path = format!("/accept/{}", token_of(&links[email]));
        let client = app.client.clone();
        let url = app.url(&path);
        async move {
            let response = client
                .get(url)
                .header("Accept", BROWSER_ACCEPT)
                .header("Accept-Language", language)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            response.text().await.unwrap()
        }
    };

    // The import's language wins over the browser's.
    let german = page("anna@x.io", "en-GB,en;q=0.9").await;
    assert!(german.contains("<html lang=\"de\">"), "{german}");
    assert!(german.contains("Einladung annehmen"), "{german}");
    assert!(
        [
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
            "Dezember"
        ]
        .iter()
        .any(|m| german.contains(m)),
        "the expiry in German: {german}"
    );

    // Without one, the browser's; English when it asks for none we have.
    let from_browser = page("bob@x.io", "de-CH,de;q=0.9,en;q=0.5").await;
    assert!(from_browser.contains("<html lang=\"de\">"));
    let english = page("bob@x.io", "ja").await;
    assert!(english.contains("<html lang=\"en\">"));
    assert!(english.contains("Accept invitation"));
}
