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
