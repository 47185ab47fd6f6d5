//! One account never sees another's imports, reports or users.

use crate::both_backends;
use crate::helpers::{assert_problem, TestApp};
use serde_json::Value;

both_backends!(another_accounts_imports_reports_and_users_are_invisible);

async fn another_accounts_imports_reports_and_users_are_invisible(app: TestApp) {
    let other = app.create_account("Globex");
    let import = app.import("ann@x.io").await;
    let id = import["id"].as_str().unwrap();
    app.add_users(&["member@x.io"]).await;

    for path in [format!("/imports/{id}"), format!("/imports/{id}/report")] {
        assert_problem(app.get_as(&other, &path).await, 404, "not-found").await;
    }
    let history: Value = app.get_as(&other, "/imports").await.json().await.unwrap();
    assert_eq!(history["imports"], serde_json::json!([]));
    let users: Value = app.get_as(&other, "/users").await.json().await.unwrap();
    assert_eq!(users["users"], serde_json::json!([]));

    // The other account's import is judged against its own users and invitations.
    let theirs = app.upload_as(&other, "ann@x.io\nmember@x.io").await;
    let theirs: Value = theirs.json().await.unwrap();
    assert_eq!(theirs["counts"]["queued"], 2);
}
