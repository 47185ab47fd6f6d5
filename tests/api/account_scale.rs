//! Classifying a file asks the account about the file's own addresses, a
//! batch at a time (2,000 entries on SQLite, 20,000 on PostgreSQL), inside
//! the import's transaction: an address the account has is skipped in
//! whichever batch it comes, and concurrent imports still never open two
//! invitations to one address.

use crate::both_backends;
use crate::helpers::{counts, Backend, TestApp};
use serde_json::Value;

both_backends!(
    backend:
    every_batch_of_a_large_file_is_settled_against_the_account,
    with_no_second_connection_idle_the_import_asks_on_its_own_and_answers_the_same,
    the_dry_run_of_a_large_file_counts_what_its_import_does,
    concurrent_imports_overlapping_across_batches_open_one_invitation_per_address,
);

/// Larger than one batch on both backends.
const ENTRIES: usize = 25_000;

/// An account with a user, a suppressed address and an open invitation;
/// a file of [`ENTRIES`] new addresses with those three in its first,
/// second and last batches (in another case), and repeats of earlier
/// entries in its last batch. Returns the file.
async fn arrange(app: &TestApp) -> String {
    app.add_users(&["user@x.io"]).await;
    app.suppress("gone@x.io");
    app.import("asked@x.io").await;
    let mut lines: Vec<String> = (0..ENTRIES).map(|n| format!("p{n}@x.io")).collect();
    lines[0] = "User@X.io".into();
    lines[2_500] = "GONE@x.io".into();
    lines[21_000] = "asked@X.IO".into();
    lines[22_000] = "P5@x.io".into();
    lines[23_000] = "gone@x.io".into();
    lines[ENTRIES - 1] = "user@x.io".into();
    lines.join("\n")
}

/// What [`arrange`]'s file must come to.
fn assert_expected_counts(counts: &Value) {
    let got: Vec<i64> = [
        "entries",
        "existing_user",
        "suppressed",
        "already_invited",
        "duplicate",
        "invalid",
        "queued",
    ]
    .iter()
    .map(|k| counts[k].as_i64().unwrap_or(-1))
    .collect();
    assert_eq!(
        got,
        [ENTRIES as i64, 1, 1, 1, 3, 0, ENTRIES as i64 - 6],
        "{counts}"
    );
}

async fn every_batch_of_a_large_file_is_settled_against_the_account(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    assert_every_batch_settled(&app).await;
}

/// The import asks about each batch on a second connection while it
/// writes the one before; with none idle it asks on its own, and the
/// answers are the same.
async fn with_no_second_connection_idle_the_import_asks_on_its_own_and_answers_the_same(
    backend: Backend,
) {
    let app = TestApp::spawn_tuned(backend, |pool| pool.max_size = Some(1), |_| {}).await;

    assert_every_batch_settled(&app).await;
}

async fn assert_every_batch_settled(app: &TestApp) {
    let file = arrange(app).await;

    let import = app.import(file).await;

    assert_expected_counts(counts(&import));
    let report = app.report(import["id"].as_str().unwrap()).await;
    let status_at = |position: usize| report[position - 1]["status"].as_str().unwrap();
    assert_eq!(
        [1, 2_501, 21_001, 22_001, 23_001, ENTRIES].map(status_at),
        [
            "existing_user",
            "suppressed",
            "already_invited",
            "duplicate",
            "duplicate",
            "duplicate"
        ]
    );
    assert_eq!(status_at(2), "queued");
    let open = "status IN ('queued', 'sent', 'delivered')";
    assert_eq!(
        app.count_where("invitations", open),
        ENTRIES as i64 - 6 + 1,
        "this import's invitations and the earlier one"
    );
    assert_eq!(
        app.count_where("invitations", "email_key IN ('user@x.io', 'gone@x.io')"),
        0
    );
}

async fn the_dry_run_of_a_large_file_counts_what_its_import_does(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let file = arrange(&app).await;

    let preview = app.post_text("/imports?dry_run=true", file.clone()).await;
    assert_eq!(preview.status(), 200);
    let preview: Value = preview.json().await.expect("JSON");
    let import = app.import(file).await;

    assert_expected_counts(&preview["counts"]);
    let listed: Vec<(i64, &str)> = preview["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            (
                e["position"].as_i64().unwrap(),
                e["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (1, "existing_user"),
            (2_501, "suppressed"),
            (21_001, "already_invited"),
            (22_001, "duplicate"),
            (23_001, "duplicate"),
            (ENTRIES as i64, "duplicate"),
        ]
    );
    for key in [
        "entries",
        "existing_user",
        "suppressed",
        "already_invited",
        "duplicate",
    ] {
        assert_eq!(preview["counts"][key], import["counts"][key], "{key}");
    }
}

/// Three imports at once of 24,000 addresses each, overlapping by two
/// thirds, in different orders and cases, so one's batches meet the
/// others' in every order.
async fn concurrent_imports_overlapping_across_batches_open_one_invitation_per_address(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let a: Vec<String> = (0..24_000).map(|n| format!("c{n}@x.io")).collect();
    let b: Vec<String> = (8_000..32_000)
        .rev()
        .map(|n| format!("C{n}@x.io"))
        .collect();
    let c: Vec<String> = (16_000..40_000).map(|n| format!("c{n}@X.IO")).collect();

    let (a, b, c) = tokio::join!(
        app.upload(a.join("\n")),
        app.upload(b.join("\n")),
        app.upload(c.join("\n"))
    );

    let mut imports = Vec::new();
    for response in [a, b, c] {
        assert_eq!(response.status(), 201);
        imports.push(response.json::<Value>().await.expect("JSON"));
    }
    let sum = |key: &str| -> i64 {
        imports
            .iter()
            .map(|i| counts(i)[key].as_i64().unwrap())
            .sum()
    };
    assert_eq!((sum("invited"), sum("already_invited")), (40_000, 32_000));
    assert_eq!(app.count_where("invitations", "status = 'queued'"), 40_000);
    let duplicates = app.count_where(
        "(SELECT email_key FROM invitations WHERE status IN ('queued', 'sent', 'delivered') \
         GROUP BY account_id, email_key HAVING COUNT(*) > 1) AS d",
        "1 = 1",
    );
    assert_eq!(duplicates, 0);
}
