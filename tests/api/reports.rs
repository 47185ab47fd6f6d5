//! Reports: file order, status filters, keyset paging and streamed CSV.

use crate::both_backends;
use crate::helpers::{statuses, TestApp};
use serde_json::Value;

both_backends!(
    a_report_pages_through_every_entry_in_file_order,
    a_status_filter_returns_only_those_entries_and_pages_too,
    the_csv_report_holds_every_row_with_formulas_defused,
    the_csv_report_can_be_asked_for_with_the_accept_header_and_filtered,
);

async fn a_report_pages_through_every_entry_in_file_order(app: TestApp) {
    let file: String = (1..=250).map(|n| format!("user{n}@x.io\n")).collect();
    let import = app.import(file).await;
    let id = import["id"].as_str().unwrap();

    let mut positions = Vec::new();
    let mut path = format!("/imports/{id}/report?limit=100");
    let mut pages = 0;
    loop {
        let page: Value = app.get(&path).await.json().await.unwrap();
        pages += 1;
        assert_eq!(page["import"]["id"], id);
        for entry in page["entries"].as_array().unwrap() {
            positions.push(entry["position"].as_i64().unwrap());
            assert_eq!(entry["line"], entry["position"]);
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/imports/{id}/report?limit=100&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(positions, (1..=250).collect::<Vec<i64>>());
}

async fn a_status_filter_returns_only_those_entries_and_pages_too(app: TestApp) {
    let import = app
        .import("a@x.io\nbad\nA@x.io\nb@x.io\nworse\nB@X.IO\n")
        .await;
    let id = import["id"].as_str().unwrap();

    let page: Value = app
        .get(&format!(
            "/imports/{id}/report?status=invalid&status=duplicate&limit=3"
        ))
        .await
        .json()
        .await
        .unwrap();
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(statuses(entries), ["invalid", "duplicate", "invalid"]);
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest: Value = app
        .get(&format!(
            "/imports/{id}/report?status=invalid,duplicate&limit=3&cursor={cursor}"
        ))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rest["entries"][0]["raw"], "B@X.IO");
    assert_eq!(rest["next_cursor"], Value::Null);
}

async fn the_csv_report_holds_every_row_with_formulas_defused(app: TestApp) {
    let import = app
        .import("\"Lee, Ann\" <ann@x.io>\n=cmd|'/c'!A1\n+sum@x.io\n-x@y.io\n@SUM(1)\n")
        .await;
    let id = import["id"].as_str().unwrap();

    let response = app.get(&format!("/imports/{id}/report?format=csv")).await;

    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let body = response.text().await.unwrap();
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(
        lines,
        [
            "position,line,raw,email,status,reason,detail",
            "1,1,\"\"\"Lee, Ann\"\" <ann@x.io>\",ann@x.io,queued,,",
            "2,2,'=cmd|'/c'!A1,,invalid,missing_at,the entry has no @ sign",
            "3,3,'+sum@x.io,'+sum@x.io,queued,,",
            "4,4,'-x@y.io,'-x@y.io,queued,,",
            "5,5,'@SUM(1),,invalid,comment,the address contains a comment in parentheses; remove the text in parentheses",
        ]
    );
}

async fn the_csv_report_can_be_asked_for_with_the_accept_header_and_filtered(app: TestApp) {
    let file: String = (1..=12_000)
        .map(|n| format!("u{n}@x.io\nbad{n}\n"))
        .collect();
    let import = app.import(file).await;
    let id = import["id"].as_str().unwrap();

    let response = app
        .client
        .get(app.url(&format!("/imports/{id}/report?status=invalid")))
        .bearer_auth(&app.api_key)
        .header("Accept", "text/csv")
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    let rows: Vec<&str> = body.lines().skip(1).collect();
    assert_eq!(rows.len(), 12_000);
    assert!(rows
        .iter()
        .all(|r| r.ends_with(",invalid,missing_at,the entry has no @ sign")));
    assert!(rows[11_999].starts_with("24000,24000,bad12000,"));
}

mod import_on_page {
    use crate::both_backends;
    use crate::helpers::{statuses, Backend, TestApp};
    use reqwest::multipart::{Form, Part};
    use serde_json::Value;

    both_backends!(backend: a_report_page_shows_its_import_as_the_import_itself_does);

    /// A report page carries its import (PostgreSQL reads both in one
    /// statement, the import as JSON): every field, options and odd text
    /// included, is what `GET /imports/{id}` says.
    async fn a_report_page_shows_its_import_as_the_import_itself_does(backend: Backend) {
        let app = TestApp::spawn_with(backend, |c| {
            c.allowed_redirect_origins = vec!["https://app.test".into()];
        })
        .await;
        // Nothing to send, so the import is complete at once and nothing
        // changes it between the two reads.
        let form = Form::new()
            .part(
                "file",
                Part::bytes(b"not-an-address\nbad@\nbad@\n".to_vec())
                    .file_name("t\u{e9}am \"1\".txt"),
            )
            .text("message", "Welcome,\n\"friend\" \\ \u{1F44B}")
            .text("expires_in_days", "9")
            .text("redirect_url", "https://app.test/welcome?a=1&b=2")
            .text("invited_by", "Ann <Lee> & Co")
            .text("locale", "fr-CA");
        let response = app.upload_form(form).await;
        assert_eq!(response.status(), 201);
        let id = response.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();

        let own: Value = app
            .get(&format!("/imports/{id}"))
            .await
            .json()
            .await
            .unwrap();
        let page: Value = app
            .get(&format!("/imports/{id}/report?limit=2"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(page["import"], own);
        assert_eq!(own["filename"], "t\u{e9}am \"1\".txt");
        assert_eq!(
            own["options"]["message"],
            "Welcome,\n\"friend\" \\ \u{1F44B}"
        );
        assert_eq!(own["options"]["expires_in_days"], 9);
        assert_eq!(
            own["options"]["redirect_url"],
            "https://app.test/welcome?a=1&b=2"
        );
        assert_eq!(own["status"], "completed");
        assert!(own["completed_at"].is_string());
        assert_eq!(own["counts"]["invalid"], 3);
        assert_eq!(
            statuses(page["entries"].as_array().unwrap()),
            ["invalid", "invalid"]
        );
        assert_eq!(page["next_cursor"], "2");
    }
}

mod read_paths {
    use crate::helpers::TestApp;

    /// PostgreSQL's reads of an import, its report and the history run on
    /// the HTTP workers over tokio-postgres when the server is reached
    /// without TLS, and on the blocking pool through libpq otherwise (here
    /// a URL with `sslmode=prefer`, which libpq may take over TLS, so the
    /// workers do not read from it). Both write the same bytes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_answers_the_same_bytes_on_the_blocking_read_path() {
        let Some(app) = TestApp::spawn_postgres().await else {
            return;
        };
        let file: String = (1..=150)
            .map(|n| match n % 5 {
                0 => format!("bad{n}\n"),
                1 => format!("Ann \"{n}\" <Ann.{n}@X.io>\n"),
                2 => format!("user{}@x.io\n", n - 1),
                _ => format!("user{n}@x.io\n"),
            })
            .collect();
        let first = app.import("early@x.io\n").await;
        let import = app.import(file).await;
        let id = import["id"].as_str().unwrap();
        let first_id = first["id"].as_str().unwrap();
        let beside = app.beside(&app.database_url_tls_preferred()).await;

        let paths = [
            format!("/imports/{id}"),
            format!("/imports/{id}/report?limit=100"),
            format!("/imports/{id}/report?limit=100&cursor=100"),
            format!("/imports/{id}/report?status=invalid&status=duplicate&limit=7"),
            format!("/imports/{id}/report?status=queued&limit=5&cursor=40"),
            "/imports?limit=20".to_string(),
            format!("/imports?limit=1&cursor={id}"),
            format!("/imports/{first_id}/report"),
        ];
        let body = |address: &str, path: &str| {
            let request = app.client.get(format!("{address}{path}"));
            let key = app.api_key.clone();
            let path = path.to_string();
            async move {
                let response = request.bearer_auth(key).send().await.unwrap();
                assert_eq!(response.status(), 200, "{path}");
                response.text().await.unwrap()
            }
        };
        for path in paths {
            let asynchronous = body(&app.address, &path).await;
            let blocking = body(&beside.address, &path).await;
            assert_eq!(blocking, asynchronous, "{path}");
            assert!(asynchronous.len() > 100, "{path}: {asynchronous}");
        }
    }
}

/// PostgreSQL's keyset reads share each HTTP worker's connections, their
/// statements queued one behind another on it (`db::async_pg`): many reads
/// in flight at once, of several imports, each get their own import's
/// rows, and an unknown import its 404, whatever was queued beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_in_flight_together_each_get_their_own_answer() {
    let Some(app) = crate::helpers::TestApp::spawn_postgres().await else {
        return;
    };
    let mut ids = Vec::new();
    for n in 0..4usize {
        let file: String = (0..30 * (n + 1))
            .map(|k| format!("i{n}.{k}@x.io\n"))
            .collect();
        ids.push(app.import(file).await["id"].as_str().unwrap().to_string());
    }
    let reads = (0..240usize).map(|k| {
        let n = k % 4;
        let (id, cursor) = (&ids[n], k % 25);
        let app = &app;
        async move {
            match k % 3 {
                0 => {
                    let page: serde_json::Value = app
                        .get(&format!("/imports/{id}/report?limit=5&cursor={cursor}"))
                        .await
                        .json()
                        .await
                        .unwrap();
                    assert_eq!(page["import"]["id"], id.as_str(), "read {k}");
                    let emails: Vec<_> = page["entries"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|e| e["email"].as_str().unwrap().to_string())
                        .collect();
                    let expected: Vec<_> = (cursor..cursor + 5)
                        .map(|p| format!("i{n}.{p}@x.io"))
                        .collect();
                    assert_eq!(emails, expected, "read {k}");
                }
                1 => {
                    let import: serde_json::Value = app
                        .get(&format!("/imports/{id}"))
                        .await
                        .json()
                        .await
                        .unwrap();
                    assert_eq!(import["id"], id.as_str(), "read {k}");
                    assert_eq!(import["counts"]["entries"], 30 * (n + 1), "read {k}");
                }
                _ => {
                    let missing = app.get(&format!("/imports/{id}x/report")).await;
                    assert_eq!(missing.status(), 404, "read {k}");
                }
            }
        }
    });
    futures_util::future::join_all(reads).await;
}
