//! Uploading files: the happy path, every status, idempotency, dry runs.

use crate::both_backends;
use crate::helpers::{counts, statuses, TestApp};
use serde_json::Value;

both_backends!(
    an_upload_answers_201_with_location_and_counts_that_add_up,
    a_raw_text_body_is_imported_like_a_file_part,
    each_entry_gets_the_status_the_account_state_calls_for,
    each_kind_of_known_address_is_found_while_the_others_are_empty,
    a_second_import_of_the_same_addresses_says_already_invited,
    a_retried_upload_with_the_same_idempotency_key_returns_the_first_import,
    an_idempotency_key_reused_for_another_file_is_refused,
    a_dry_run_predicts_the_real_run_and_writes_nothing,
    a_file_of_only_invalid_entries_is_a_completed_import,
    the_history_lists_imports_newest_first_page_by_page,
);

async fn an_upload_answers_201_with_location_and_counts_that_add_up(app: TestApp) {
    let response = app
        .upload("ann@x.io\nBob <bob@y.io>\nnot-an-address\nANN@X.IO\n")
        .await;

    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let import: Value = response.json().await.unwrap();
    let id = import["id"].as_str().unwrap();
    assert_eq!(location, format!("/imports/{id}"));
    assert_eq!(import["filename"], "team.txt");
    assert_eq!(import["status"], "dispatching");
    assert_eq!(import["links"]["report"], format!("/imports/{id}/report"));
    let c = counts(&import);
    assert_eq!(
        (c["entries"].as_i64(), c["invalid"].as_i64()),
        (Some(4), Some(1))
    );
    assert_eq!(
        (c["duplicate"].as_i64(), c["queued"].as_i64()),
        (Some(1), Some(2))
    );
    let fetched: Value = app.get(&location).await.json().await.unwrap();
    assert_eq!(fetched, import);
    assert_eq!(app.count_rows("invitations"), 2);
}

async fn a_raw_text_body_is_imported_like_a_file_part(app: TestApp) {
    let response = app.upload_text("ann@x.io, bob@y.io").await;

    assert_eq!(response.status(), 201);
    let import: Value = response.json().await.unwrap();
    assert_eq!(counts(&import)["queued"], 2);
    assert_eq!(import["filename"], Value::Null);
}

async fn each_entry_gets_the_status_the_account_state_calls_for(app: TestApp) {
    app.add_users(&["member@x.io"]).await;
    app.import("pending@x.io").await;

    let import = app
        .import("new@x.io\nbad@@x.io\nnew@X.IO\nMember@x.io\npending@x.io\n")
        .await;

    let entries = app.report(import["id"].as_str().unwrap()).await;
    assert_eq!(
        statuses(&entries),
        [
            "queued",
            "invalid",
            "duplicate",
            "existing_user",
            "already_invited"
        ]
    );
    assert_eq!(entries[1]["reason"], "multiple_at");
    assert_eq!(entries[2]["email"], "new@x.io");
    let c = counts(&import);
    assert_eq!(c["existing_user"], 1);
    assert_eq!(c["already_invited"], 1);
    assert_eq!(c["invited"], 1);
}

/// The import asks about users, suppressions and open invitations only
/// in the tables where the account has rows (both databases skip the
/// others' probes): each kind must still be found when it is the only one
/// there, and when a kind appears mid-way through the account's life.
async fn each_kind_of_known_address_is_found_while_the_others_are_empty(app: TestApp) {
    // Open invitations alone: the preview asks about them (an import lets
    // SQLite's unique index find them).
    app.import("early@x.io").await;
    let preview = app.preview("EARLY@x.io\nother@x.io").await;
    let c = &preview["counts"];
    assert_eq!(
        (c["already_invited"].as_i64(), c["queued"].as_i64()),
        (Some(1), Some(1)),
        "{preview}"
    );

    app.suppress("gone@x.io");
    let only_suppressed = app.import("Gone@x.io\nfresh@x.io").await;
    let entries = app.report(only_suppressed["id"].as_str().unwrap()).await;
    assert_eq!(statuses(&entries), ["suppressed", "queued"]);

    app.add_users(&["member@x.io"]).await;
    let all_three = app
        .import("fresh@x.io\nMEMBER@x.io\ngone@x.io\nnew@x.io")
        .await;
    let entries = app.report(all_three["id"].as_str().unwrap()).await;
    assert_eq!(
        statuses(&entries),
        ["already_invited", "existing_user", "suppressed", "queued"]
    );
}

async fn a_second_import_of_the_same_addresses_says_already_invited(app: TestApp) {
    app.import("ann@x.io\nbob@y.io").await;

    let second = app.import("Ann@x.io\nbob@Y.io\ncarol@z.io").await;

    let c = counts(&second);
    assert_eq!(
        (c["already_invited"].as_i64(), c["queued"].as_i64()),
        (Some(2), Some(1))
    );
    assert_eq!(app.count_rows("invitations"), 3);
}

async fn a_retried_upload_with_the_same_idempotency_key_returns_the_first_import(app: TestApp) {
    let send = || async {
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(b"ann@x.io\nbob@y.io".to_vec()).file_name("t.txt"),
        );
        app.client
            .post(app.url("/imports"))
            .bearer_auth(&app.api_key)
            .header("Idempotency-Key", "upload-42")
            .multipart(form)
            .send()
            .await
            .unwrap()
    };

    let first = send().await;
    let second = send().await;

    assert_eq!(
        (first.status().as_u16(), second.status().as_u16()),
        (201, 201)
    );
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    let (first, second): (Value, Value) =
        (first.json().await.unwrap(), second.json().await.unwrap());
    assert_eq!(first["id"], second["id"]);
    assert_eq!(app.history_len().await, 1);
    assert_eq!(app.count_rows("invitations"), 2);
}

async fn an_idempotency_key_reused_for_another_file_is_refused(app: TestApp) {
    let send = |body: &'static str| {
        app.client
            .post(app.url("/imports"))
            .bearer_auth(&app.api_key)
            .header("Content-Type", "text/plain")
            .header("Idempotency-Key", "k1")
            .body(body)
            .send()
    };
    assert_eq!(send("ann@x.io").await.unwrap().status(), 201);

    let response = send("bob@y.io").await.unwrap();

    crate::helpers::assert_problem(response, 409, "idempotency-key-reused").await;
    assert_eq!(app.history_len().await, 1);
}

async fn a_dry_run_predicts_the_real_run_and_writes_nothing(app: TestApp) {
    app.add_users(&["member@x.io"]).await;
    let file = "a@x.io\nA@x.io\nnope\nmember@x.io\nb@y.io\n";
    let preview = app.preview(file).await;
    // Scripts from before the preview had its own operation still get it.
    let old_way: Value = app
        .post_text("/imports?dry_run=true", file)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(old_way, preview);
    assert_eq!(app.history_len().await, 0);
    assert_eq!(app.count_rows("import_entries"), 0);

    let real = app.import(file).await;

    assert_eq!(preview["dry_run"], true);
    assert_eq!(preview["counts"], real["counts"]);
    let skipped: Vec<(i64, &str)> = preview["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["position"].as_i64().unwrap(),
                e["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        skipped,
        [(2, "duplicate"), (3, "invalid"), (4, "existing_user")]
    );
}

async fn a_file_of_only_invalid_entries_is_a_completed_import(app: TestApp) {
    let import = app.import("nope\n@x.io\nann@\n").await;

    assert_eq!(import["status"], "completed");
    assert!(import["completed_at"].is_string());
    assert_eq!(counts(&import)["invalid"], 3);
    assert_eq!(app.count_rows("invitations"), 0);
}

async fn the_history_lists_imports_newest_first_page_by_page(app: TestApp) {
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(
            app.import(format!("user{n}@x.io")).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    ids.reverse();

    let mut seen = Vec::new();
    let mut path = "/imports?limit=2".to_owned();
    loop {
        let page: Value = app.get(&path).await.json().await.unwrap();
        let imports = page["imports"].as_array().unwrap();
        assert!(imports.len() <= 2);
        seen.extend(imports.iter().map(|i| i["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/imports?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, ids);
}
