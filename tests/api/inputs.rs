//! Malformed and oversized inputs on every route: each is a 4xx
//! problem+json on both databases, never a 500, and nothing is stored.

use crate::both_backends;
use crate::helpers::{assert_problem, TestApp};
use crate::served::read_answer;
use std::net::TcpStream;
use std::time::Duration;

const MIB: u64 = 1024 * 1024;
use reqwest::multipart::{Form, Part};
use reqwest::{Method, Response};
use serde_json::Value;

both_backends!(
    control_characters_are_refused_on_every_route_and_parameter,
    unknown_methods_on_known_paths_get_405_with_allow,
    oversized_json_and_webhook_bodies_get_a_problem_413,
    a_dry_run_lists_at_most_1000_entries_and_says_there_are_more,
    an_unconfigured_webhook_is_refused_before_its_body_is_read,
);

/// The operations of the served OpenAPI document: (method, path template,
/// query parameter names).
async fn operations(app: &TestApp) -> Vec<(Method, String, Vec<String>)> {
    let spec: Value = app.get("/openapi.json").await.json().await.expect("spec");
    let mut operations = Vec::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            let Ok(method) = method.to_uppercase().parse::<Method>() else {
                continue;
            };
            let query = operation["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "query")
                .filter_map(|p| p["name"].as_str().map(str::to_owned))
                .collect();
            operations.push((method, path.clone(), query));
        }
    }
    assert!(operations.len() >= 19, "{operations:?}");
    operations
}

/// Fills every `{parameter}` of a path template with `value`.
fn fill(template: &str, value: &str) -> String {
    template
        .split('/')
        .map(|s| if s.starts_with('{') { value } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

async fn send(app: &TestApp, method: Method, path: &str) -> Response {
    app.client
        .request(method, app.url(path))
        .bearer_auth(&app.api_key)
        .header("Content-Type", "text/plain")
        .body("ann@example.com\n")
        .send()
        .await
        .expect("request")
}

/// A refusal a client can act on: a 4xx problem document.
async fn assert_client_error(response: Response, what: &str) {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!((400..500).contains(&status), "{what}: {status}");
    assert_eq!(content_type, "application/problem+json", "{what}");
}

async fn control_characters_are_refused_on_every_route_and_parameter(app: TestApp) {
    let ok = app.import("ann@example.com\n").await;
    let id = ok["id"].as_str().expect("id");
    let mut created = 1;
    for (method, template, query) in operations(&app).await {
        for bad in ["%00", "a%01b", "%7F", "x%0Ay"] {
            if template.contains('{') {
                let path = fill(&template, bad);
                assert_client_error(send(&app, method.clone(), &path).await, &path).await;
            }
            let path = fill(&template, id);
            for name in &query {
                let path = format!("{path}?{name}={bad}");
                let response = send(&app, method.clone(), &path).await;
                if bad == "x%0Ay" && response.status().is_success() {
                    // A line break is a legal character in a message.
                    created += i64::from(response.status() == 201);
                    continue;
                }
                assert_client_error(response, &format!("{method} {path}")).await;
            }
        }
    }
    // A form field holding NUL.
    let form = Form::new()
        .part(
            "file",
            Part::bytes(b"bob@example.com\n".to_vec()).file_name("t.txt"),
        )
        .text("message", "hi\u{0}there");
    assert_problem(app.upload_form(form).await, 400, "invalid-option").await;
    // Nothing refused was stored.
    assert_eq!(app.count_rows("imports"), created);
}

async fn unknown_methods_on_known_paths_get_405_with_allow(app: TestApp) {
    let mut allowed: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (method, template, _) in operations(&app).await {
        allowed
            .entry(fill(&template, "some-id"))
            .or_default()
            .push(method.to_string());
    }
    for (path, methods) in &allowed {
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            if methods.iter().any(|m| m == method) {
                continue;
            }
            let response = send(&app, method.parse().expect("method"), path).await;
            let allow = response
                .headers()
                .get("allow")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let mut listed: Vec<&str> = allow.split(", ").collect();
            listed.sort_unstable();
            let mut expected: Vec<&str> = methods.iter().map(String::as_str).collect();
            expected.sort_unstable();
            expected.dedup();
            assert_problem(response, 405, "method-not-allowed").await;
            assert_eq!(listed, expected, "{method} {path}");
        }
    }
    assert_problem(
        send(&app, Method::GET, "/no/such/path").await,
        404,
        "not-found",
    )
    .await;
}

async fn oversized_json_and_webhook_bodies_get_a_problem_413(app: TestApp) {
    let emails: Vec<String> = (0..120_000).map(|i| format!("p{i}@example.com")).collect();
    let body = serde_json::to_vec(&serde_json::json!({ "emails": emails })).expect("JSON");
    assert!(body.len() > 2 * 1024 * 1024);
    let post = |key: Option<&str>| {
        let mut request = app
            .client
            .post(app.url("/users"))
            .header("Content-Type", "application/json")
            .body(body.clone());
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        request.send()
    };
    assert_problem(
        post(Some(&app.api_key)).await.expect("post"),
        413,
        "body-too-large",
    )
    .await;
    // Without a key the body is not even read.
    assert_problem(post(None).await.expect("post"), 401, "unauthorized").await;
    let response = app
        .client
        .post(app.url("/users"))
        .bearer_auth(&app.api_key)
        .header("Content-Type", "text/csv")
        .body("ann@example.com")
        .send()
        .await
        .expect("post");
    assert_problem(response, 415, "unsupported-media-type").await;
    assert_eq!(app.count_rows("users"), 0);
}

async fn a_dry_run_lists_at_most_1000_entries_and_says_there_are_more(app: TestApp) {
    let preview = |body: String| {
        app.client
            .post(app.url("/imports/preview"))
            .bearer_auth(&app.api_key)
            .header("Content-Type", "text/plain")
            .body(body)
            .send()
    };
    let response = preview("a\n".repeat(300_000)).await.expect("preview");
    assert_eq!(response.status(), 200);
    let view: Value = response.json().await.expect("JSON");
    assert_eq!(view["counts"]["invalid"], 300_000);
    assert_eq!(view["entries"].as_array().expect("entries").len(), 1_000);
    assert_eq!(view["entries"][999]["position"], 1_000);
    assert_eq!(view["entries_truncated"], true);

    let small: Value = preview("a\nann@example.com\nb\n".into())
        .await
        .expect("preview")
        .json()
        .await
        .expect("JSON");
    assert_eq!(small["entries"].as_array().expect("entries").len(), 2);
    assert_eq!(small["entries_truncated"], false);
    assert_eq!(app.count_rows("imports"), 0);
}

async fn an_unconfigured_webhook_is_refused_before_its_body_is_read(app: TestApp) {
    for provider in ["postmark", "resend", "sendgrid"] {
        let head = format!(
            "POST /webhooks/{provider} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Content-Length: 100\r\n\r\n["
        );
        let port = app.address.rsplit(':').next().expect("port").to_owned();
        let answer = tokio::task::spawn_blocking(move || {
            use std::io::Write;
            let mut stream = TcpStream::connect(format!("127.0.0.1:{port}")).expect("connect");
            stream.write_all(head.as_bytes()).expect("write");
            read_answer(stream, Duration::from_secs(3))
        })
        .await
        .expect("answer");
        assert_eq!(answer.status, Some(401), "{provider}: {answer:?}");
        assert!(
            answer.closed && answer.after < Duration::from_millis(1900),
            "{answer:?}"
        );
    }
    // A body over the limit on a configured webhook is a problem+json 413
    // (tested on the configured Resend webhook in `inputs`); an unconfigured
    // one is refused whatever its size.
    let response = app
        .client
        .post(app.url("/webhooks/postmark"))
        .body(vec![b'['; 2 * MIB as usize])
        .send()
        .await
        .expect("post");
    assert_problem(response, 401, "webhook-unverified").await;
}
