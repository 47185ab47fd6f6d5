//! Adding and listing the account's existing members.

use crate::both_backends;
use crate::helpers::{assert_problem, TestApp};
use serde_json::{json, Value};

both_backends!(
    added_users_are_normalised_listed_and_never_duplicated,
    a_users_request_that_is_not_an_emails_object_is_a_bad_request,
);

async fn added_users_are_normalised_listed_and_never_duplicated(app: TestApp) {
    let first = app
        .add_users(&["Ann@X.IO", "bob@y.io", "nope", "ann@x.io"])
        .await;

    let added: Vec<&str> = first["added"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(added, ["Ann@x.io", "bob@y.io"]);
    assert_eq!(first["existing"], json!(["ann@x.io"]));
    assert_eq!(
        first["invalid"],
        json!([{"email": "nope", "reason": "missing_at"}])
    );

    let second = app.add_users(&["BOB@y.io", "carol@z.io"]).await;
    assert_eq!(second["existing"], json!(["BOB@y.io"]));

    let page: Value = app.get("/users?limit=2").await.json().await.unwrap();
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest: Value = app
        .get(&format!("/users?limit=2&cursor={cursor}"))
        .await
        .json()
        .await
        .unwrap();
    let emails: Vec<&str> = page["users"]
        .as_array()
        .unwrap()
        .iter()
        .chain(rest["users"].as_array().unwrap())
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["Ann@x.io", "bob@y.io", "carol@z.io"]);
    assert_eq!(rest["next_cursor"], Value::Null);
}

async fn a_users_request_that_is_not_an_emails_object_is_a_bad_request(app: TestApp) {
    let response = app
        .client
        .post(app.url("/users"))
        .bearer_auth(&app.api_key)
        .json(&json!(["ann@x.io"]))
        .send()
        .await
        .unwrap();

    assert_problem(response, 400, "invalid-json").await;
    assert_eq!(app.count_rows("users"), 0);
}
