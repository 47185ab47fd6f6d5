//! Re-sending follows the rules of importing, and the database keeps at
//! most one open invitation per address and account: an address that
//! bounced since, became a user or holds another open invitation is
//! skipped and counted, and never gets a second working link.

use crate::both_backends;
use crate::helpers::{assert_problem, counts, statuses, Backend, TestApp};
use crate::webhooks::senders::{id, postmark_bounce, receipt, Hooks};
use serde_json::Value;

both_backends!(
    backend:
    resending_an_import_skips_suppressed_users_and_already_invited_addresses,
    resending_one_invitation_is_refused_with_the_reason_until_it_is_allowed,
    concurrent_overlapping_imports_leave_one_open_invitation_per_address,
    the_database_refuses_a_second_open_invitation_to_an_address,
);

/// Import A invites ann, bob, carol and dave; their invitations expire.
/// Import B invites ann and carol again; ann's hard-bounces (so she is
/// suppressed); bob becomes a user. Returns (hooks, import A's id).
async fn arrange(backend: Backend) -> (Hooks, String) {
    let hooks = Hooks::spawn(backend).await;
    let key = hooks.app.api_key.clone();
    let a = hooks
        .import_sent(&key, "ann@x.io\nbob@x.io\ncarol@x.io\ndave@x.io")
        .await;
    let a = id(&a).to_owned();
    hooks.app.execute(&format!(
        "UPDATE invitations SET expires_at = '2000-01-01 00:00:00' WHERE import_id = '{a}'"
    ));
    let b = hooks.import_sent(&key, "ann@x.io\ncarol@x.io").await;
    assert_eq!(counts(&b)["invited"], 2, "expired invitations do not block");
    let ann = hooks.invitation(id(&b), "ann@x.io");
    let bounce = hooks
        .postmark_event(&postmark_bounce(&ann, "HardBounce"))
        .await;
    assert_eq!(receipt(bounce).await, (1, 1));
    hooks.app.add_users(&["BOB@x.io"]).await;
    (hooks, a)
}

async fn post(app: &TestApp, path: &str) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .bearer_auth(&app.api_key)
        .send()
        .await
        .expect("request")
}

async fn resending_an_import_skips_suppressed_users_and_already_invited_addresses(
    backend: Backend,
) {
    let (hooks, a) = arrange(backend).await;
    let app = &hooks.app;

    let answer = post(app, &format!("/imports/{a}/resend")).await;

    assert_eq!(answer.status(), 200);
    let answer: Value = answer.json().await.expect("JSON");
    assert_eq!(answer["changed"], 1, "{answer}");
    assert_eq!(
        answer["skipped"],
        serde_json::json!({"suppressed": 1, "existing_user": 1, "already_invited": 1})
    );
    let done = hooks.import_when_completed(&app.api_key, &a).await;
    assert_eq!(
        (
            counts(&done)["sent"].as_i64(),
            done["counts"]["expired"].as_i64()
        ),
        (Some(1), Some(3))
    );
    assert_eq!(
        statuses(&app.report(&a).await),
        ["expired", "expired", "expired", "sent"]
    );
    let sent = hooks.recipients().await;
    let times = |to: &str| sent.iter().filter(|t| *t == to).count();
    assert_eq!(
        [
            times("ann@x.io"),
            times("bob@x.io"),
            times("carol@x.io"),
            times("dave@x.io")
        ],
        [2, 1, 2, 2],
        "the bounced address, the user and the invited one get nothing more"
    );
    assert_eq!(open_duplicates(app), 0);
}

async fn resending_one_invitation_is_refused_with_the_reason_until_it_is_allowed(backend: Backend) {
    let (hooks, a) = arrange(backend).await;
    let app = &hooks.app;
    let resend = |email: &str| {
        let path = format!("/invitations/{}/resend", hooks.invitation(&a, email));
        async move { post(app, &path).await }
    };

    assert_problem(resend("ann@x.io").await, 409, "invitation-suppressed").await;
    assert_problem(resend("bob@x.io").await, 409, "existing-user").await;
    assert_problem(resend("carol@x.io").await, 409, "already-invited").await;
    let lifted = app
        .client
        .delete(app.url("/suppressions/Ann@X.io"))
        .bearer_auth(&app.api_key)
        .send()
        .await
        .expect("request");
    assert_eq!(lifted.status(), 204);
    let again = resend("ann@x.io").await;

    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.expect("JSON");
    assert_eq!(again["status"], "queued");
    hooks.import_when_completed(&app.api_key, &a).await;
    assert_eq!(open_duplicates(app), 0);
}

async fn concurrent_overlapping_imports_leave_one_open_invitation_per_address(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let first: Vec<String> = (0..3000).map(|n| format!("p{n}@x.io")).collect();
    let second: Vec<String> = (1500..4500).map(|n| format!("P{n}@X.io")).collect();

    let (a, b) = tokio::join!(app.upload(first.join("\n")), app.upload(second.join("\n")));

    assert_eq!((a.status().as_u16(), b.status().as_u16()), (201, 201));
    let (a, b): (Value, Value) = (a.json().await.unwrap(), b.json().await.unwrap());
    let invited = counts(&a)["invited"].as_i64().unwrap() + counts(&b)["invited"].as_i64().unwrap();
    let already = a["counts"]["already_invited"].as_i64().unwrap()
        + b["counts"]["already_invited"].as_i64().unwrap();
    assert_eq!((invited, already), (4500, 1500));
    assert_eq!(app.count_where("invitations", "status = 'queued'"), 4500);
    assert_eq!(open_duplicates(&app), 0);
}

async fn the_database_refuses_a_second_open_invitation_to_an_address(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let import = app.import("ann@x.io").await;
    let import_id = import["id"].as_str().unwrap();
    let copy = |id: &str, position: i64, status: &str| {
        format!(
            "INSERT INTO invitations (id, account_id, import_id, position, email, email_key, status, \
             attempts, next_attempt_at, token_version, created_at) \
             SELECT '{id}', account_id, import_id, {position}, email, email_key, '{status}', 0, \
             next_attempt_at, 0, created_at FROM invitations WHERE import_id = '{import_id}'"
        )
    };
    let mut conn = app.pool.get().unwrap();
    use diesel::RunQueryDsl;

    let second = diesel::sql_query(copy("second", 2, "sent")).execute(&mut *conn);
    let closed = diesel::sql_query(copy("closed", 3, "expired")).execute(&mut *conn);

    assert!(
        matches!(
            second,
            Err(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _
            ))
        ),
        "{second:?}"
    );
    assert_eq!(closed.ok(), Some(1), "a closed invitation does not count");
}

/// Addresses of the account with more than one open invitation.
fn open_duplicates(app: &TestApp) -> i64 {
    app.count_where(
        "(SELECT email_key FROM invitations WHERE status IN ('queued', 'sent', 'delivered') \
         GROUP BY account_id, email_key HAVING COUNT(*) > 1) AS d",
        "1 = 1",
    )
}
