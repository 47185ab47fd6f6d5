//! Bad input gets a clear problem+json answer, and nothing is stored for it.

use crate::both_backends;
use crate::helpers::{assert_problem, Backend, TestApp, SMALL_LIMIT};
use reqwest::multipart::{Form, Part};

both_backends!(
    requests_without_a_valid_key_are_unauthorized,
    an_upload_without_a_file_part_or_content_is_a_bad_request,
    an_unsupported_content_type_is_refused,
    binary_content_is_refused_naming_the_line,
    text_that_is_not_utf8_is_refused_naming_the_line,
    an_unknown_import_is_not_found,
    bad_cursors_statuses_and_limits_are_bad_requests,
);

async fn requests_without_a_valid_key_are_unauthorized(app: TestApp) {
    let cases = [
        (None, "/imports"),
        (Some("Bearer nope"), "/imports"),
        (Some("Basic dXNlcjpwYXNz"), "/users"),
        (Some("Bearer "), "/imports"),
    ];
    for (header, path) in cases {
        let mut request = app.client.get(app.url(path));
        if let Some(header) = header {
            request = request.header("Authorization", header);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        assert_problem(response, 401, "unauthorized").await;
    }
    let upload = app.upload_as("wrong-key", "ann@x.io").await;
    assert_problem(upload, 401, "unauthorized").await;
    assert_eq!(app.count_rows("imports"), 0);
}

async fn an_upload_without_a_file_part_or_content_is_a_bad_request(app: TestApp) {
    let wrong_part = Form::new().part("upload", Part::bytes(b"ann@x.io".to_vec()));
    let response = app
        .client
        .post(app.url("/imports"))
        .bearer_auth(&app.api_key)
        .multipart(wrong_part)
        .send()
        .await
        .unwrap();
    let detail = assert_problem(response, 400, "missing-file").await;
    assert!(detail.contains("`file`"), "{detail}");

    assert_problem(app.upload_text("").await, 400, "empty-file").await;
    assert_problem(app.upload("").await, 400, "empty-file").await;
    assert_problem(app.upload(" ,;\n\r\n ").await, 400, "no-entries").await;
    assert_eq!(app.count_rows("imports"), 0);
}

async fn an_unsupported_content_type_is_refused(app: TestApp) {
    let response = app
        .client
        .post(app.url("/imports"))
        .bearer_auth(&app.api_key)
        .json(&serde_json::json!({"emails": ["ann@x.io"]}))
        .send()
        .await
        .unwrap();

    let detail = assert_problem(response, 415, "unsupported-media-type").await;
    assert!(detail.contains("application/json"), "{detail}");
}

async fn binary_content_is_refused_naming_the_line(app: TestApp) {
    let response = app
        .upload(b"ann@x.io\nbob@y.io\n\x00\x01\x02".to_vec())
        .await;

    let detail = assert_problem(response, 415, "binary-content").await;
    assert!(detail.contains("line 3"), "{detail}");
    assert_eq!(app.count_rows("imports"), 0);
}

async fn text_that_is_not_utf8_is_refused_naming_the_line(app: TestApp) {
    let response = app
        .upload(b"ann@x.io\r\nbob@y.io\r\nj\xf6rg@z.de\r\n".to_vec())
        .await;

    let detail = assert_problem(response, 422, "invalid-encoding").await;
    assert!(detail.contains("line 3"), "{detail}");
    assert_eq!(app.count_rows("import_entries"), 0);
}

async fn an_unknown_import_is_not_found(app: TestApp) {
    for path in [
        "/imports/01a2157e-0000-7000-8000-000000000000",
        "/imports/not-even-a-uuid/report",
    ] {
        assert_problem(app.get(path).await, 404, "not-found").await;
    }
    assert_problem(app.get("/no/such/path").await, 404, "not-found").await;
}

async fn bad_cursors_statuses_and_limits_are_bad_requests(app: TestApp) {
    let import = app.import("ann@x.io").await;
    let report = format!("/imports/{}/report", import["id"].as_str().unwrap());
    let history_cursor = app.get("/imports?limit=1").await;
    assert_eq!(history_cursor.status(), 200);
    let cases = [
        (format!("{report}?cursor=%%%"), "invalid-cursor"),
        (format!("{report}?cursor=bm9wZQ"), "invalid-cursor"),
        ("/imports?cursor=cDox".to_owned(), "invalid-cursor"),
        ("/users?cursor=garbage".to_owned(), "invalid-cursor"),
        (
            format!("{report}?status=queued&status=lost"),
            "invalid-status",
        ),
        (format!("{report}?status="), "invalid-status"),
        ("/invitations?status=".to_owned(), "invalid-status"),
        (format!("{report}?limit=0"), "invalid-limit"),
        (format!("{report}?limit=100000"), "invalid-limit"),
        (format!("{report}?limit=ten"), "invalid-query"),
        ("/imports?limit=-1".to_owned(), "invalid-limit"),
        ("/users?limit=abc".to_owned(), "invalid-query"),
        (format!("{report}?format=xml"), "invalid-format"),
    ];
    for (path, slug) in cases {
        let response = app.get(&path).await;
        assert_problem(response, 400, slug).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_over_the_limit_is_refused_with_413_and_nothing_is_stored_on_sqlite() {
    a_file_over_the_limit_is_refused_with_413_and_nothing_is_stored(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_over_the_limit_is_refused_with_413_and_nothing_is_stored_on_postgres() {
    if crate::helpers::postgres_available() {
        a_file_over_the_limit_is_refused_with_413_and_nothing_is_stored(Backend::Postgres).await;
    }
}

async fn a_file_over_the_limit_is_refused_with_413_and_nothing_is_stored(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.max_upload_bytes = SMALL_LIMIT).await;
    let big = "someone.with.a.long.name@example.com\n".repeat(4 * 1024);
    assert!(big.len() as u64 > SMALL_LIMIT);

    assert_problem(app.upload(big.clone()).await, 413, "file-too-large").await;
    assert_problem(app.upload_text(big.clone()).await, 413, "file-too-large").await;

    // Without a Content-Length (chunked), the stream is cut off at the limit.
    let chunks: Vec<Result<String, std::io::Error>> =
        big.lines().map(|l| Ok(format!("{l}\n"))).collect();
    let response = app
        .client
        .post(app.url("/imports"))
        .bearer_auth(&app.api_key)
        .header("Content-Type", "text/plain")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_problem(response, 413, "file-too-large").await;
    assert_eq!(app.count_rows("imports"), 0);

    let just_fits = "a@x.io\n".repeat(SMALL_LIMIT as usize / 7);
    assert_eq!(app.upload(just_fits).await.status(), 201);
}
