//! The contract as generated clients, browsers and Swagger UI use it: one
//! success shape per operation, upload options in one place, CORS for a
//! frontend on another origin, and a document that says what this server
//! takes.

use crate::both_backends;
use crate::helpers::{assert_problem, Backend, TestApp};
use reqwest::multipart::{Form, Part};
use reqwest::Method;
use serde_json::Value;

both_backends!(
    backend: a_frontend_on_an_allowed_origin_gets_cors_answers_and_others_none,
    upload_options_come_from_one_place_or_must_agree,
    the_csv_export_is_its_own_operation_and_the_old_ways_still_work,
    the_served_document_spells_out_this_servers_redirect_origins,
);

const FRONTEND: &str = "http://frontend.test:5173";

async fn a_frontend_on_an_allowed_origin_gets_cors_answers_and_others_none(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.cors_allowed_origins = vec![FRONTEND.into(), "https://other.test".into()]
    })
    .await;

    // The preflight of an upload with an idempotency key.
    let preflight = app
        .client
        .request(Method::OPTIONS, app.url("/imports"))
        .header("Origin", FRONTEND)
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization, content-type, idempotency-key",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 200);
    let header = |r: &reqwest::Response, name: &str| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_ascii_lowercase())
            .unwrap_or_default()
    };
    assert_eq!(
        header(&preflight, "access-control-allow-origin"),
        FRONTEND.to_ascii_lowercase()
    );
    for method in ["get", "post", "patch", "delete"] {
        assert!(header(&preflight, "access-control-allow-methods").contains(method));
    }
    for name in ["authorization", "content-type", "idempotency-key"] {
        assert!(header(&preflight, "access-control-allow-headers").contains(name));
    }

    // The upload itself: the page may read Location and Idempotent-Replayed.
    let upload = app
        .client
        .post(app.url("/imports"))
        .header("Origin", FRONTEND)
        .bearer_auth(&app.api_key)
        .header("Content-Type", "text/plain")
        .body("ann@x.io\n")
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), 201);
    assert_eq!(
        header(&upload, "access-control-allow-origin"),
        FRONTEND.to_ascii_lowercase()
    );
    for name in [
        "location",
        "idempotent-replayed",
        "content-disposition",
        "retry-after",
    ] {
        assert!(
            header(&upload, "access-control-expose-headers").contains(name),
            "{name} is exposed"
        );
    }
    // A refusal carries the headers too, so the page can read the problem.
    let refused = app
        .client
        .get(app.url("/imports"))
        .header("Origin", FRONTEND)
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(&refused, "access-control-allow-origin"),
        FRONTEND.to_ascii_lowercase()
    );
    assert_problem(refused, 401, "unauthorized").await;

    // Another origin is served as before, without CORS headers: its page
    // cannot read the answer.
    let stranger = app
        .client
        .get(app.url("/imports"))
        .header("Origin", "https://evil.test")
        .bearer_auth(&app.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(stranger.status(), 200);
    assert!(stranger
        .headers()
        .get("access-control-allow-origin")
        .is_none());

    // Without CORS_ALLOWED_ORIGINS nothing is allowed.
    let closed = TestApp::spawn(backend).await;
    let preflight = closed
        .client
        .request(Method::OPTIONS, closed.url("/imports"))
        .header("Origin", FRONTEND)
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap();
    assert!(preflight
        .headers()
        .get("access-control-allow-origin")
        .is_none());
    assert_problem(preflight, 405, "method-not-allowed").await;
}

async fn upload_options_come_from_one_place_or_must_agree(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let form = |message: &str| {
        Form::new()
            .part(
                "file",
                Part::bytes(b"ann@x.io\n".to_vec()).file_name("team.txt"),
            )
            .text("message", message.to_owned())
    };
    let post = |query: &str, form: Form| {
        app.client
            .post(app.url(&format!("/imports{query}")))
            .bearer_auth(&app.api_key)
            .multipart(form)
            .send()
    };

    let conflict = post("?message=Hello", form("Welcome")).await.unwrap();
    let detail = assert_problem(conflict, 400, "conflicting-option").await;
    assert!(detail.contains("`message`"), "{detail}");
    assert_eq!(app.count_rows("imports"), 0);
    // `filename` renames the part (whose own name is kept without it).
    let renamed = post("?filename=other.txt", form("")).await.unwrap();
    assert_eq!(renamed.status(), 201);
    let import: Value = renamed.json().await.unwrap();
    assert_eq!(import["filename"], "other.txt");

    // The same value both ways is one value.
    let agreeing = post("?message=Welcome", form("Welcome")).await.unwrap();
    assert_eq!(agreeing.status(), 201);
    let import: Value = agreeing.json().await.unwrap();
    assert_eq!(import["options"]["message"], "Welcome");
    assert_eq!(import["filename"], "team.txt");

    // A raw upload takes them from the query.
    let raw = app
        .client
        .post(app.url("/imports?message=Hi&expires_in_days=3&filename=t.txt"))
        .bearer_auth(&app.api_key)
        .header("Content-Type", "text/plain")
        .body("bob@y.io\n")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 201);
    let import: Value = raw.json().await.unwrap();
    assert_eq!(import["options"]["message"], "Hi");
    assert_eq!(import["options"]["expires_in_days"], 3);
    assert_eq!(import["filename"], "t.txt");
}

async fn the_csv_export_is_its_own_operation_and_the_old_ways_still_work(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let import = app.import("ann@x.io\nnope\n").await;
    let id = import["id"].as_str().unwrap();

    let csv = app
        .get(&format!("/imports/{id}/report.csv?status=invalid"))
        .await;
    assert_eq!(csv.status(), 200);
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    assert_eq!(
        csv.headers()["content-disposition"],
        format!("attachment; filename=\"report-{id}.csv\"").as_str()
    );
    let text = csv.text().await.unwrap();
    assert_eq!(
        text,
        "position,line,raw,email,status,reason,detail\n2,2,nope,,invalid,missing_at,the entry has no @ sign\n"
    );

    // The JSON page answers JSON only, with the reason as a code and words.
    let page: Value = app
        .get(&format!("/imports/{id}/report?status=invalid"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["entries"][0]["reason"], "missing_at");
    assert_eq!(page["entries"][0]["detail"], "the entry has no @ sign");

    // Scripts from before report.csv: `format=csv` and `Accept: text/csv`.
    let old = app
        .get(&format!("/imports/{id}/report?status=invalid&format=csv"))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(old, text);
    let accepted = app
        .client
        .get(app.url(&format!("/imports/{id}/report?status=invalid")))
        .bearer_auth(&app.api_key)
        .header("Accept", "text/csv")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(accepted, text);

    let other = app.get("/imports/nope/report.csv").await;
    assert_problem(other, 404, "not-found").await;
}

async fn the_served_document_spells_out_this_servers_redirect_origins(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.allowed_redirect_origins = vec!["https://app.test".into()]
    })
    .await;
    let served: Value = app.get("/openapi.json").await.json().await.unwrap();
    let committed: Value =
        serde_json::from_str(include_str!("../../openapi/openapi.json")).unwrap();
    let pattern = |doc: &Value, path: &str| {
        doc["paths"][path]["post"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "redirect_url")
            .unwrap()["schema"]["pattern"]
            .clone()
    };
    assert_eq!(pattern(&committed, "/imports"), "^$");
    let allowed = pattern(&served, "/imports");
    assert_eq!(
        allowed,
        r"^((?:https://app\.test)(?:[/?#][^\x00-\x20\x7F]*)?)?$"
    );
    assert_eq!(pattern(&served, "/imports/preview"), allowed);

    // What the pattern allows, the server takes.
    let taken = app
        .client
        .post(app.url("/imports?redirect_url=https://app.test/welcome%3Fx=1"))
        .bearer_auth(&app.api_key)
        .header("Content-Type", "text/plain")
        .body("ann@x.io\n")
        .send()
        .await
        .unwrap();
    assert_eq!(taken.status(), 201);
    let refused = app
        .client
        .post(app.url("/imports?redirect_url=https://evil.test/"))
        .bearer_auth(&app.api_key)
        .header("Content-Type", "text/plain")
        .body("ann@x.io\n")
        .send()
        .await
        .unwrap();
    assert_problem(refused, 400, "invalid-option").await;
}
