//! Health endpoints and the published contract.

use crate::both_backends;
use crate::helpers::TestApp;
use serde_json::Value;

both_backends!(
    health_and_readiness_answer_without_a_key,
    metrics_count_imports_entries_and_due_invitations,
    the_served_spec_is_the_committed_one_and_swagger_ui_shows_it,
);

async fn health_and_readiness_answer_without_a_key(app: TestApp) {
    for (path, status) in [("/healthz", "ok"), ("/readyz", "ready")] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], status);
    }
}

async fn the_served_spec_is_the_committed_one_and_swagger_ui_shows_it(app: TestApp) {
    let served = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), 200);
    let served = served.text().await.unwrap();
    let committed = include_str!("../../openapi/openapi.json");
    assert!(
        served.trim_end() == committed.trim_end(),
        "openapi/openapi.json is out of date: run `cargo run -- openapi > openapi/openapi.json` and commit it"
    );
    let spec: Value = serde_json::from_str(&served).unwrap();
    for path in [
        "/imports",
        "/imports/{id}",
        "/imports/{id}/report",
        "/users",
        "/healthz",
        "/readyz",
    ] {
        assert!(spec["paths"][path].is_object(), "{path} is documented");
    }
    assert_eq!(
        spec["components"]["securitySchemes"]["api_key"]["scheme"],
        "bearer"
    );

    let ui = app
        .client
        .get(app.url("/swagger-ui/"))
        .send()
        .await
        .unwrap();
    assert_eq!(ui.status(), 200);
    let html = ui.text().await.unwrap();
    assert!(html.contains("swagger-ui"));
    let init = app
        .client
        .get(app.url("/swagger-ui/swagger-initializer.js"))
        .send()
        .await
        .unwrap();
    let init = init.text().await.unwrap();
    assert!(init.contains("/openapi.json"));
    // An ops person's key survives a reload.
    assert!(init.contains("\"persistAuthorization\": true"), "{init}");
    // Where people type it, without the slash.
    let bare = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(app.url("/swagger-ui"))
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), 308);
    assert_eq!(bare.headers()["location"], "/swagger-ui/");

    // What linters and generators need: servers, a license identifier,
    // unique operation ids, `security` on every operation (empty on the
    // public ones), and an example of its own type on each problem answer.
    assert_eq!(spec["servers"][0]["url"], "/");
    assert_eq!(spec["info"]["license"]["identifier"], "MIT");
    let mut ids = std::collections::BTreeSet::new();
    let mut examples = std::collections::BTreeSet::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let id = operation["operationId"].as_str().unwrap();
            assert!(ids.insert(id.to_owned()), "{id} is unique");
            let security = operation["security"].as_array().expect("security");
            if path.starts_with("/healthz") || path.starts_with("/readyz") {
                assert!(security.is_empty(), "{method} {path} is public");
            }
            for (status, response) in operation["responses"].as_object().unwrap() {
                assert!(
                    response["description"]
                        .as_str()
                        .is_some_and(|d| !d.is_empty()),
                    "{method} {path} {status} has a description"
                );
                let Some(problem) = response["content"].get("application/problem+json") else {
                    continue;
                };
                let example = &problem["example"];
                assert_eq!(
                    example["status"].to_string(),
                    *status,
                    "{method} {path} {status}"
                );
                examples.insert(example.to_string());
            }
        }
    }
    for id in [
        "get_metrics",
        "get_import_report",
        "get_import_report_csv",
        "preview_import",
        "receive_resend_events",
    ] {
        assert!(ids.contains(id), "{id}");
    }
    assert!(
        examples.len() > 20,
        "error examples differ: {}",
        examples.len()
    );
}

async fn metrics_count_imports_entries_and_due_invitations(app: TestApp) {
    app.import("ann@x.io\nann@x.io\nnope\nbob@y.io").await;
    app.import("nope").await;

    let response = app.client.get(app.url("/metrics")).send().await.unwrap();

    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    for line in [
        "bulk_invite_imports{status=\"dispatching\"} 1",
        "bulk_invite_imports{status=\"completed\"} 1",
        "bulk_invite_entries{status=\"invalid\"} 2",
        "bulk_invite_entries{status=\"duplicate\"} 1",
        "bulk_invite_entries{status=\"queued\"} 2",
        "bulk_invite_invitations_due 2",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
}
