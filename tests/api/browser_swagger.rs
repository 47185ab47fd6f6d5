//! Swagger UI in a real browser (Debian's Chromium): an ops person uploads
//! a file, reads the report as JSON and downloads the CSV from the page,
//! and a page on another origin uploads through CORS
//! (`tests/browser/swagger.mjs`; screenshots in `target/browser/`).

use crate::browser::run_script;
use crate::helpers::{postgres_available, Backend, TestApp};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium: .ci/browser-setup"]
async fn browser_swagger_ui_on_sqlite() {
    swagger_ui_and_a_frontend_on_another_origin(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium: .ci/browser-setup"]
async fn browser_swagger_ui_on_postgres() {
    if postgres_available() {
        swagger_ui_and_a_frontend_on_another_origin(Backend::Postgres).await;
    }
}

async fn swagger_ui_and_a_frontend_on_another_origin(backend: Backend) {
    let frontend_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let app = TestApp::spawn_with(backend, |c| {
        c.cors_allowed_origins = vec![format!("http://127.0.0.1:{frontend_port}")]
    })
    .await;
    let base = app.url("");
    let out = run_script(
        "swagger.mjs",
        &[
            ("BASE_URL", base.trim_end_matches('/').to_owned()),
            ("API_KEY", app.api_key.clone()),
            ("FRONTEND_PORT", frontend_port.to_string()),
        ],
    );
    let seen: Value = serde_json::from_str(out.lines().last().unwrap_or("")).expect("JSON");
    assert_eq!(seen["upload_status"], "201");
    assert_eq!(seen["report_entries"], 2);
    assert_eq!(seen["csv_lines"], 4);
    assert_eq!(seen["cross_origin"]["status"], 201);
    // What the page made is what the server holds.
    assert_eq!(app.history_len().await, 2);
}
