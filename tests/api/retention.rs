//! Retention and erasure: `DELETE /imports/{id}` and the
//! `REPORT_RETENTION_DAYS` sweep erase an import's report and its invitees'
//! addresses, keep its counts and history row, and revoke what was still
//! open; `DELETE /users/{id}` removes a member.

use crate::both_backends;
use crate::helpers::{assert_problem, counts, wait_until, Backend, TestApp};
use crate::lifecycle::{import_of, import_settled, spawn, tokens};
use serde_json::Value;
use std::time::Duration;

both_backends!(
    backend:
    erasing_an_import_keeps_its_counts_and_leaves_no_address_behind,
    erasing_revokes_open_invitations_first_and_their_links_name_no_one,
    erasing_an_import_being_sent_is_refused_and_changes_nothing,
    the_retention_sweep_erases_old_imports_and_keeps_young_ones,
    a_removed_user_is_gone_and_can_be_invited_again,
);

async fn delete_as(app: &TestApp, key: &str, path: &str) -> reqwest::Response {
    app.client
        .delete(app.url(path))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
}

async fn delete(app: &TestApp, path: &str) -> reqwest::Response {
    delete_as(app, &app.api_key, path).await
}

/// Rows of the import's invitations that still hold anything personal.
fn invitations_with_personal_data(app: &TestApp, id: &str) -> i64 {
    app.count_where(
        "invitations",
        &format!(
            "import_id = '{id}' AND (email <> '' OR email_key <> '' OR last_error IS NOT NULL)"
        ),
    )
}

async fn erasing_an_import_keeps_its_counts_and_leaves_no_address_behind(backend: Backend) {
    let (app, server) = spawn(backend).await;
    let import = import_settled(&app, "ann@x.io\nbob@y.io\nnot-an-address\nANN@x.io").await;
    let id = import["id"].as_str().unwrap().to_owned();
    let tokens = tokens(&server).await;
    let accepted = app
        .client
        .post(app.url(&format!("/accept/{}", tokens["ann@x.io"])))
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 200);
    let bob: Value = app
        .get("/invitations?email=bob@y.io")
        .await
        .json()
        .await
        .unwrap();
    let bob_id = bob["invitations"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        delete(&app, &format!("/invitations/{bob_id}"))
            .await
            .status(),
        200
    );
    let before = import_of(&app, &id).await;
    assert!(before["erased_at"].is_null());

    let erased = delete(&app, &format!("/imports/{id}")).await;

    assert_eq!(erased.status(), 204);
    let after = import_of(&app, &id).await;
    assert_eq!(
        counts(&after),
        counts(&before),
        "the counts stay as they were"
    );
    assert_eq!(
        (
            after["counts"]["accepted"].as_i64(),
            after["counts"]["revoked"].as_i64()
        ),
        (Some(1), Some(1))
    );
    let erased_at = after["erased_at"]
        .as_str()
        .expect("erased_at set")
        .to_owned();
    let history: Value = app.get("/imports").await.json().await.unwrap();
    assert_eq!(history["imports"][0]["id"], id.as_str());
    assert_eq!(history["imports"][0]["erased_at"], erased_at.as_str());
    let report = app.get(&format!("/imports/{id}/report")).await;
    let detail = assert_problem(report, 410, "import-erased").await;
    assert!(detail.contains(&format!("/imports/{id}")), "{detail}");
    let csv = app.get(&format!("/imports/{id}/report.csv")).await;
    assert_problem(csv, 410, "import-erased").await;
    let resend = crate::lifecycle::post(&app, &format!("/imports/{id}/resend")).await;
    assert_problem(resend, 410, "import-erased").await;
    let listed: Value = app
        .get(&format!("/invitations?import_id={id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["invitations"], serde_json::json!([]));
    let gone = delete(&app, &format!("/invitations/{bob_id}")).await;
    assert_problem(gone, 404, "not-found").await;
    // Straight from the database: the rows that keep the counts stay, and
    // nothing in them or in the report names anyone.
    assert_eq!(
        app.count_where("import_entries", &format!("import_id = '{id}'")),
        0
    );
    assert_eq!(
        app.count_where("invitations", &format!("import_id = '{id}'")),
        2
    );
    assert_eq!(invitations_with_personal_data(&app, &id), 0);
    let used = app
        .client
        .get(app.url(&format!("/accept/{}", tokens["ann@x.io"])))
        .send()
        .await
        .unwrap();
    let body = assert_problem(used, 410, "invitation-used").await;
    assert!(!body.contains("ann@x.io"));
    let page = app
        .client
        .get(app.url(&format!("/accept/{}", tokens["ann@x.io"])))
        .header("Accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 410);
    assert!(
        !page.text().await.unwrap().contains("ann@x.io"),
        "the page names no one"
    );

    let again = delete(&app, &format!("/imports/{id}")).await;

    assert_eq!(again.status(), 204, "erasing is idempotent");
    let still = import_of(&app, &id).await;
    assert_eq!(still["erased_at"], erased_at.as_str());
    assert_eq!(counts(&still), counts(&before));
}

async fn erasing_revokes_open_invitations_first_and_their_links_name_no_one(backend: Backend) {
    let (app, server) = spawn(backend).await;
    let import = import_settled(&app, "bob@y.io\ncarol@z.io").await;
    let id = import["id"].as_str().unwrap().to_owned();
    let token = tokens(&server).await["bob@y.io"].clone();
    let link = app.url(&format!("/accept/{token}"));
    let open: Value = app
        .client
        .get(&link)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(open["email"], "bob@y.io");
    let other = app.create_account("Other");
    let foreign = delete_as(&app, &other, &format!("/imports/{id}")).await;
    assert_problem(foreign, 404, "not-found").await;
    assert!(import_of(&app, &id).await["erased_at"].is_null());
    assert_eq!(
        app.count_where("import_entries", &format!("import_id = '{id}'")),
        2
    );

    let erased = delete(&app, &format!("/imports/{id}")).await;

    assert_eq!(erased.status(), 204);
    let after = import_of(&app, &id).await;
    let c = counts(&after);
    assert_eq!(
        (
            c["invited"].as_i64(),
            c["sent"].as_i64(),
            c["revoked"].as_i64()
        ),
        (Some(2), Some(0), Some(2))
    );
    for method in [reqwest::Method::GET, reqwest::Method::POST] {
        let refused = app.client.request(method, &link).send().await.unwrap();
        let detail = assert_problem(refused, 410, "invitation-revoked").await;
        assert!(!detail.contains("bob@y.io"));
    }
    let page = app
        .client
        .get(&link)
        .header("Accept", "text/html")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("bob@y.io"), "the page names no one");
    assert_eq!(invitations_with_personal_data(&app, &id), 0);
    // The erased invitation no longer holds the address open.
    let again = app.import("bob@y.io").await;
    assert_eq!(counts(&again)["invited"], 1);
}

async fn erasing_an_import_being_sent_is_refused_and_changes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let import = app.import("dan@x.io\neve@y.io").await;
    let id = import["id"].as_str().unwrap().to_owned();
    // A dispatcher holds one of its invitations (what a claim writes).
    app.execute(&format!(
        "UPDATE invitations SET batch_id = 'b1', lease_owner = 'w1', \
         lease_expires_at = '2999-01-01 00:00:00' WHERE import_id = '{id}' AND email = 'dan@x.io'"
    ));

    let busy = delete(&app, &format!("/imports/{id}")).await;

    assert_problem(busy, 409, "import-busy").await;
    let unchanged = import_of(&app, &id).await;
    assert!(unchanged["erased_at"].is_null());
    assert_eq!(counts(&unchanged)["queued"], 2);
    assert_eq!(app.report(&id).await.len(), 2);
    // The batch is done with: now the queued invitations are revoked, so
    // the dispatcher never sends them.
    app.execute(
        "UPDATE invitations SET batch_id = NULL, lease_owner = NULL, lease_expires_at = NULL",
    );
    assert_eq!(delete(&app, &format!("/imports/{id}")).await.status(), 204);
    let after = import_of(&app, &id).await;
    assert_eq!(
        (after["status"].as_str(), counts(&after)["revoked"].as_i64()),
        (Some("completed"), Some(2))
    );
    assert_eq!(app.count_where("invitations", "status = 'queued'"), 0);
}

async fn the_retention_sweep_erases_old_imports_and_keeps_young_ones(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.retention.report_retention_days = 30;
        c.retention.report_retention_sweep_secs = 1;
    })
    .await;
    let account: Value = app.get("/account").await.json().await.unwrap();
    assert_eq!(account["limits"]["report_retention_days"], 30);
    let old = app.import("old@x.io\nnot-an-address").await;
    let young = app.import("young@x.io").await;
    let (old_id, young_id) = (old["id"].as_str().unwrap(), young["id"].as_str().unwrap());
    app.execute(&format!(
        "UPDATE imports SET created_at = '2000-01-01 00:00:00' WHERE id = '{old_id}'"
    ));

    let erased = wait_until(Duration::from_secs(15), || async {
        let current = import_of(&app, old_id).await;
        current["erased_at"].is_string().then_some(current)
    })
    .await;

    let c = counts(&erased);
    assert_eq!(
        (
            c["entries"].as_i64(),
            c["invalid"].as_i64(),
            c["revoked"].as_i64()
        ),
        (Some(2), Some(1), Some(1))
    );
    assert_eq!(
        app.count_where("import_entries", &format!("import_id = '{old_id}'")),
        0
    );
    assert_eq!(invitations_with_personal_data(&app, old_id), 0);
    let kept = import_of(&app, young_id).await;
    assert!(kept["erased_at"].is_null());
    assert_eq!(counts(&kept)["queued"], 1);
    let report = app.report(young_id).await;
    assert_eq!(report[0]["email"], "young@x.io");
}

async fn a_removed_user_is_gone_and_can_be_invited_again(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let added = app.add_users(&["carol@z.io"]).await;
    let user_id = added["added"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(counts(&app.import("carol@z.io").await)["existing_user"], 1);
    let other = app.create_account("Other");
    let foreign = delete_as(&app, &other, &format!("/users/{user_id}")).await;
    assert_problem(foreign, 404, "not-found").await;

    let removed = delete(&app, &format!("/users/{user_id}")).await;

    assert_eq!(removed.status(), 204);
    let users: Value = app.get("/users").await.json().await.unwrap();
    assert_eq!(users["users"], serde_json::json!([]));
    assert_eq!(app.count_rows("users"), 0);
    let again = delete(&app, &format!("/users/{user_id}")).await;
    assert_problem(again, 404, "not-found").await;
    assert_eq!(counts(&app.import("carol@z.io").await)["invited"], 1);
}
