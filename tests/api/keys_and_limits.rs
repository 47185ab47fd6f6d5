//! Running it for many accounts: API keys with scopes, revoked at once;
//! the daily invitation budget; the request rate per key; uploads at once
//! per account; the account's view of its limits.

use crate::both_backends;
use crate::helpers::{assert_problem, counts, wait_until, Backend, TestApp};
use futures_util::StreamExt;
use reqwest::Method;
use reqwest::Response;
const DELETE: Method = Method::DELETE;
const POST: Method = Method::POST;
use serde_json::{json, Value};
use std::time::Duration;

both_backends!(
    backend: keys_have_scopes_and_a_revoked_key_stops_at_once,
    the_last_admin_key_stays_and_keys_made_before_scopes_are_admin,
    last_used_at_is_written_at_most_once_a_minute,
    an_import_past_the_daily_budget_is_refused_whole,
    twenty_uploads_at_once_never_pass_the_budget,
    a_resend_counts_against_the_budget,
    the_request_rate_per_key_is_announced_and_enforced,
    uploads_at_once_per_account_are_bounded,
    the_command_line_makes_lists_and_revokes_keys_and_sets_budgets,
);

async fn send(app: &TestApp, key: &str, method: Method, path: &str) -> Response {
    app.client
        .request(method, app.url(path))
        .bearer_auth(key)
        .send()
        .await
        .expect("request")
}

async fn make_key(app: &TestApp, as_key: &str, name: &str, scopes: Value) -> Response {
    app.client
        .post(app.url("/api-keys"))
        .bearer_auth(as_key)
        .json(&json!({ "name": name, "scopes": scopes }))
        .send()
        .await
        .expect("request")
}

/// Makes a key with `scopes` and returns (id, secret).
async fn key_with(app: &TestApp, scopes: Value) -> (String, String) {
    let created = make_key(app, &app.api_key, "test key", scopes).await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.expect("JSON");
    (
        created["id"].as_str().expect("id").to_owned(),
        created["secret"].as_str().expect("secret").to_owned(),
    )
}

async fn keys_have_scopes_and_a_revoked_key_stops_at_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    // Made: the secret once, a Location, never the hash.
    let created = make_key(&app, &app.api_key, "CI uploader", json!(["write"])).await;
    assert_eq!(created.status(), 201);
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = created.json().await.unwrap();
    let (writer_id, writer) = (
        created["id"].as_str().unwrap().to_owned(),
        created["secret"].as_str().unwrap().to_owned(),
    );
    assert_eq!(location, format!("/api-keys/{writer_id}"));
    assert_eq!(created["scopes"], json!(["write"]));
    assert!(writer.starts_with(created["prefix"].as_str().unwrap()));
    let listed = app.get("/api-keys").await.text().await.unwrap();
    assert!(!listed.contains(&writer), "a listing shows a secret");
    let hash = bulk_invite::db::keys::hash(&writer);
    assert!(!listed.contains(&hash), "a listing shows a hash");
    let listed: Value = serde_json::from_str(&listed).unwrap();
    let names: Vec<&str> = listed["api_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["default", "CI uploader"]);
    let one: Value = app.get(&location).await.json().await.unwrap();
    assert_eq!(one["name"], "CI uploader");
    assert!(one.get("secret").is_none());

    let (_, reader) = key_with(&app, json!(["read"])).await;

    // read: every GET, nothing else.
    assert_eq!(app.get_as(&reader, "/imports").await.status(), 200);
    assert_eq!(app.get_as(&reader, "/account").await.status(), 200);
    let refused = app.upload_as(&reader, "ann@x.io").await;
    assert_eq!(
        refused.headers()["www-authenticate"],
        r#"Bearer error="insufficient_scope""#
    );
    let detail = assert_problem(refused, 403, "insufficient-scope").await;
    assert!(detail.contains("`write`"), "{detail}");
    assert_eq!(app.count_rows("imports"), 0);
    assert_problem(
        make_key(&app, &reader, "escalate", json!(["admin"])).await,
        403,
        "insufficient-scope",
    )
    .await;

    // write: imports and everything read does; not keys, not the account's settings.
    let import = app.upload_as(&writer, "ann@x.io").await;
    assert_eq!(import.status(), 201);
    assert_eq!(app.get_as(&writer, "/imports").await.status(), 200);
    assert_problem(
        app.get_as(&writer, "/api-keys").await,
        403,
        "insufficient-scope",
    )
    .await;
    let rename = app
        .client
        .patch(app.url("/account"))
        .bearer_auth(&writer)
        .json(&json!({"name": "Hijacked"}))
        .send()
        .await
        .unwrap();
    assert_problem(rename, 403, "insufficient-scope").await;

    // Revoked: the very next request is refused, though the key was just
    // used (and so remembered by the server).
    let revoked = send(
        &app,
        &app.api_key,
        DELETE,
        &format!("/api-keys/{writer_id}"),
    )
    .await;
    assert_eq!(revoked.status(), 204);
    assert_problem(app.get_as(&writer, "/imports").await, 401, "unauthorized").await;
    assert_problem(app.get(&location).await, 404, "not-found").await;
    let again = send(
        &app,
        &app.api_key,
        DELETE,
        &format!("/api-keys/{writer_id}"),
    )
    .await;
    assert_problem(again, 404, "not-found").await;

    // Another account's keys are invisible and untouchable.
    let other = app.create_account("Globex");
    let theirs: Value = app.get_as(&other, "/api-keys").await.json().await.unwrap();
    let their_id = theirs["api_keys"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(theirs["api_keys"].as_array().unwrap().len(), 1);
    let path = format!("/api-keys/{their_id}");
    assert_problem(app.get(&path).await, 404, "not-found").await;
    let delete = send(&app, &app.api_key, DELETE, &path).await;
    assert_problem(delete, 404, "not-found").await;
    assert_eq!(app.get_as(&other, "/account").await.status(), 200);

    // Bad requests name what is wrong.
    for (body, slug) in [
        (json!({"name": "x", "scopes": []}), "invalid-scopes"),
        (json!({"name": " ", "scopes": ["read"]}), "invalid-key-name"),
        (json!({"name": "x", "scopes": ["root"]}), "invalid-json"),
        (json!(["read"]), "invalid-json"),
    ] {
        let response = app
            .client
            .post(app.url("/api-keys"))
            .bearer_auth(&app.api_key)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_problem(response, 400, slug).await;
    }
}

async fn the_last_admin_key_stays_and_keys_made_before_scopes_are_admin(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let listed: Value = app.get("/api-keys").await.json().await.unwrap();
    let first = listed["api_keys"][0]["id"].as_str().unwrap().to_owned();
    let path = format!("/api-keys/{first}");

    // Alone, it stays, even with write keys beside it.
    key_with(&app, json!(["write", "read"])).await;
    let refused = send(&app, &app.api_key, DELETE, &path).await;
    assert_problem(refused, 409, "last-admin-key").await;
    assert_eq!(app.get("/account").await.status(), 200);

    // With a second admin key, either may go, but not both.
    let (second_id, second) = key_with(&app, json!(["admin"])).await;
    let gone = send(&app, &second, DELETE, &path).await;
    assert_eq!(gone.status(), 204);
    assert_problem(app.get("/account").await, 401, "unauthorized").await;
    let own = format!("/api-keys/{second_id}");
    let refused = send(&app, &second, DELETE, &own).await;
    assert_problem(refused, 409, "last-admin-key").await;

    // A key stored as keys were before they had scopes is an admin key.
    let old = bulk_invite::db::keys::generate();
    let account: Value = app.get_as(&second, "/account").await.json().await.unwrap();
    app.execute(&format!(
        "INSERT INTO api_keys (id, account_id, key_hash, created_at) \
         VALUES ('old-key', '{}', '{}', '2026-01-01 00:00:00')",
        account["id"].as_str().unwrap(),
        bulk_invite::db::keys::hash(&old)
    ));
    let listed: Value = app.get_as(&old, "/api-keys").await.json().await.unwrap();
    let migrated = &listed["api_keys"][0];
    assert_eq!(migrated["id"], "old-key");
    assert_eq!(migrated["scopes"], json!(["admin"]));
    assert_eq!(migrated["prefix"], Value::Null);
    assert_eq!(app.upload_as(&old, "ann@x.io").await.status(), 201);
}

async fn last_used_at_is_written_at_most_once_a_minute(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (id, key) = key_with(&app, json!(["read"])).await;
    let path = format!("/api-keys/{id}");
    let fresh: Value = app.get(&path).await.json().await.unwrap();
    assert_eq!(fresh["last_used_at"], Value::Null);

    assert_eq!(app.get_as(&key, "/imports").await.status(), 200);
    let first = wait_until(Duration::from_secs(10), || async {
        let key: Value = app.get(&path).await.json().await.unwrap();
        key["last_used_at"].as_str().map(str::to_owned)
    })
    .await;
    for _ in 0..20 {
        assert_eq!(app.get_as(&key, "/imports").await.status(), 200);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let later: Value = app.get(&path).await.json().await.unwrap();
    assert_eq!(
        later["last_used_at"],
        first.as_str(),
        "written again within a minute"
    );
}

/// An app whose accounts may queue `budget` invitations a day.
async fn with_budget(backend: Backend, budget: i64) -> TestApp {
    TestApp::spawn_with(backend, |c| c.limits.account_daily_invitations = budget).await
}

fn addresses(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("person{i}@x.io\n"))
        .collect()
}

async fn an_import_past_the_daily_budget_is_refused_whole(backend: Backend) {
    let app = with_budget(backend, 10).await;
    let first = app.import(addresses(0, 6)).await;
    assert_eq!(counts(&first)["queued"], 6);

    // The preview says what is left and whether a file fits.
    let preview = app
        .client
        .post(app.url("/imports/preview"))
        .bearer_auth(&app.api_key)
        .body(addresses(100, 5))
        .header("content-type", "text/plain")
        .send()
        .await
        .unwrap();
    let preview: Value = preview.json().await.unwrap();
    assert_eq!(
        preview["budget"],
        json!({"daily_limit": 10, "used": 6, "remaining": 4})
    );
    assert_eq!(preview["within_budget"], false);

    // Refused whole: nothing stored, the budget in the problem.
    let (imports, invitations) = (app.count_rows("imports"), app.count_rows("invitations"));
    let refused = app.upload(addresses(100, 5)).await;
    let retry: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        retry > 23 * 3600 && retry <= 24 * 3600 + 1,
        "Retry-After {retry}"
    );
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["type"], "/problems/invitation-budget-exceeded");
    assert_eq!(body["status"], 429);
    assert_eq!(
        body["budget"],
        json!({"limit": 10, "used": 6, "remaining": 4, "requested": 5})
    );
    assert_eq!(app.count_rows("imports"), imports);
    assert_eq!(app.count_rows("invitations"), invitations);
    assert_eq!(app.count_rows("import_entries"), 6);

    // Skipped entries cost nothing: 4 new among already invited ones fit.
    let fits = app
        .import(format!("{}{}", addresses(0, 6), addresses(100, 4)))
        .await;
    assert_eq!(counts(&fits)["queued"], 4);
    assert_eq!(counts(&fits)["already_invited"], 6);
    // A file larger than the whole budget can never fit: no Retry-After.
    let other = app.create_account("Globex");
    let huge = app.upload_as(&other, addresses(0, 11)).await;
    assert!(huge.headers().get("retry-after").is_none());
    let detail = assert_problem(huge, 429, "invitation-budget-exceeded").await;
    assert!(detail.contains("split the file"), "{detail}");

    // An account's own budget (as `accounts budget` sets it) wins, and GET
    // /account shows it with what is used.
    let account: Value = app.get("/account").await.json().await.unwrap();
    assert_eq!(account["limits"]["daily_invitations"], 10);
    assert_eq!(
        account["usage"]["invitations"],
        json!({"daily_limit": 10, "used": 10, "remaining": 0})
    );
    let id = account["id"].as_str().unwrap();
    let mut conn = app.pool.get().unwrap();
    assert!(bulk_invite::db::accounts::set_daily_invitations(&mut conn, id, Some(12)).unwrap());
    drop(conn);
    let more = app.import(addresses(200, 2)).await;
    assert_eq!(counts(&more)["queued"], 2);
    let account: Value = app.get("/account").await.json().await.unwrap();
    assert_eq!(
        account["usage"]["invitations"],
        json!({"daily_limit": 12, "used": 12, "remaining": 0})
    );
    // A day later the window has moved on.
    app.execute("UPDATE budget_charges SET charged_at = '2000-01-01 00:00:00'");
    let account: Value = app.get("/account").await.json().await.unwrap();
    assert_eq!(account["usage"]["invitations"]["used"], 0);
}

async fn twenty_uploads_at_once_never_pass_the_budget(backend: Backend) {
    let app = with_budget(backend, 10).await;
    let uploads = (0..20).map(|i| app.upload(addresses(i * 10, 1)));
    let answers = futures_util::future::join_all(uploads).await;
    let mut created = 0;
    for answer in answers {
        match answer.status().as_u16() {
            201 => created += 1,
            429 => {
                assert_problem(answer, 429, "invitation-budget-exceeded").await;
            }
            other => panic!("answered {other}: {}", answer.text().await.unwrap()),
        }
    }
    assert_eq!(created, 10);
    assert_eq!(app.count_rows("invitations"), 10);
    assert_eq!(app.count_rows("imports"), 10);
}

async fn a_resend_counts_against_the_budget(backend: Backend) {
    let app = with_budget(backend, 3).await;
    let import = app.import(addresses(0, 3)).await;
    let id = import["id"].as_str().unwrap();
    app.execute(&format!(
        "UPDATE invitations SET status = 'failed' WHERE import_id = '{id}'"
    ));
    let invitation = app.invitation_by_email("person0@x.io").id;

    let one = send(
        &app,
        &app.api_key,
        POST,
        &format!("/invitations/{invitation}/resend"),
    )
    .await;
    assert_problem(one, 429, "invitation-budget-exceeded").await;
    let all = send(&app, &app.api_key, POST, &format!("/imports/{id}/resend")).await;
    assert_problem(all, 429, "invitation-budget-exceeded").await;
    assert_eq!(app.count_where("invitations", "status = 'failed'"), 3);

    // Once the day has passed, the re-send goes through and is charged.
    app.execute("UPDATE budget_charges SET charged_at = '2000-01-01 00:00:00'");
    let all = send(&app, &app.api_key, POST, &format!("/imports/{id}/resend")).await;
    assert_eq!(all.status(), 200);
    let account: Value = app.get("/account").await.json().await.unwrap();
    assert_eq!(account["usage"]["invitations"]["used"], 3);
}

async fn the_request_rate_per_key_is_announced_and_enforced(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.limits.rate_limit_per_minute = 5).await;
    let other = app.create_account("Globex");
    for left in (0..5).rev() {
        // Errors count and carry the fields too.
        let answer = app.get("/imports/no-such-import").await;
        assert_eq!(answer.status(), 404);
        assert_eq!(
            answer.headers()["ratelimit-policy"],
            r#""per-key";q=5;w=60"#
        );
        let fields = answer.headers()["ratelimit"].to_str().unwrap().to_owned();
        assert!(
            fields.starts_with(&format!(r#""per-key";r={left};t="#)),
            "{fields}"
        );
    }
    let refused = app.get("/imports").await;
    let retry: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=12).contains(&retry), "Retry-After {retry}");
    assert!(refused.headers()["ratelimit"]
        .to_str()
        .unwrap()
        .starts_with(r#""per-key";r=0;"#));
    assert_problem(refused, 429, "rate-limited").await;
    // Each key has its own bucket; unauthenticated answers have no fields.
    let theirs = app.get_as(&other, "/imports").await;
    assert_eq!(theirs.status(), 200);
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert!(health.headers().get("ratelimit").is_none());
    // A minute's quota refills evenly: one request a 12 s here.
    tokio::time::sleep(Duration::from_secs(retry)).await;
    assert_eq!(app.get("/imports").await.status(), 200);
}

async fn uploads_at_once_per_account_are_bounded(backend: Backend) {
    let app =
        TestApp::spawn_with(backend, |c| c.limits.max_concurrent_imports_per_account = 1).await;
    let other = app.create_account("Globex");
    // An upload whose body is still coming holds the account's one place.
    let (more, rest) = tokio::sync::oneshot::channel::<()>();
    let head = "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\nann@x.io\n";
    let stream = futures_util::stream::iter([Ok::<_, std::io::Error>(head.as_bytes().to_vec())])
        .chain(futures_util::stream::once(async move {
            let _ = rest.await;
            Ok::<_, std::io::Error>(b"\r\n--XyZ--\r\n".to_vec())
        }));
    let slow = app
        .client
        .post(app.url("/imports"))
        .bearer_auth(&app.api_key)
        .header("Content-Type", "multipart/form-data; boundary=XyZ")
        .body(reqwest::Body::wrap_stream(stream))
        .send();
    let slow = tokio::spawn(slow);
    wait_until(Duration::from_secs(10), || async {
        let account: Value = app.get("/account").await.json().await.unwrap();
        (account["usage"]["imports_in_flight"] == 1).then_some(())
    })
    .await;

    let refused = app.upload("bob@x.io").await;
    assert_eq!(refused.headers()["retry-after"], "5");
    assert_problem(refused, 429, "too-many-imports").await;
    let preview = app
        .client
        .post(app.url("/imports/preview"))
        .bearer_auth(&app.api_key)
        .header("content-type", "text/plain")
        .body("bob@x.io")
        .send()
        .await
        .unwrap();
    assert_problem(preview, 429, "too-many-imports").await;
    assert_eq!(app.upload_as(&other, "bob@x.io").await.status(), 201);

    more.send(()).unwrap();
    let slow = slow.await.unwrap().unwrap();
    assert_eq!(slow.status(), 201);
    assert_eq!(app.upload("bob@x.io").await.status(), 201);
    let account: Value = app.get("/account").await.json().await.unwrap();
    assert_eq!(account["limits"]["concurrent_imports"], 1);
    assert_eq!(account["usage"]["imports_in_flight"], 0);
}

fn cli(app: &TestApp, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_bulk-invite"))
        .env("DATABASE_URL", &app.database_url)
        .env("RUST_LOG", "error")
        .args(args)
        .output()
        .expect("bulk-invite runs")
}

async fn the_command_line_makes_lists_and_revokes_keys_and_sets_budgets(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let account: Value = app.get("/account").await.json().await.unwrap();
    let id = account["id"].as_str().unwrap().to_owned();

    let made = cli(
        &app,
        &[
            "accounts",
            "keys",
            "create",
            &id,
            "--name",
            "CLI key",
            "--scopes",
            "read,write",
        ],
    );
    assert!(made.status.success(), "{made:?}");
    let stdout = String::from_utf8(made.stdout).unwrap();
    let secret = stdout
        .lines()
        .find_map(|l| l.strip_prefix("API key (shown only once): "))
        .unwrap_or_else(|| panic!("no key in {stdout}"))
        .to_owned();
    assert_eq!(app.get_as(&secret, "/imports").await.status(), 200);
    assert_problem(
        app.get_as(&secret, "/api-keys").await,
        403,
        "insufficient-scope",
    )
    .await;

    let listed = cli(&app, &["accounts", "keys", "list", &id]);
    let listed = String::from_utf8(listed.stdout).unwrap();
    let line = listed
        .lines()
        .find(|l| l.contains("CLI key"))
        .unwrap_or_else(|| panic!("not listed: {listed}"));
    assert!(line.contains("[read write]"), "{line}");
    assert!(!listed.contains(&secret));
    let key_id = line.split_whitespace().next().unwrap().to_owned();

    // Revoked by another process: this server stops taking the key within
    // the 10 s it trusts a key it has looked up.
    let revoked = cli(&app, &["accounts", "keys", "revoke", &id, &key_id]);
    assert!(revoked.status.success(), "{revoked:?}");
    let started = std::time::Instant::now();
    wait_until(Duration::from_secs(15), || async {
        (app.get_as(&secret, "/imports").await.status() == 401).then_some(())
    })
    .await;
    assert!(
        started.elapsed() <= Duration::from_secs(11),
        "{:?}",
        started.elapsed()
    );
    let admin_id = listed
        .lines()
        .find(|l| l.contains("[admin]"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_owned();
    let last = cli(&app, &["accounts", "keys", "revoke", &id, &admin_id]);
    assert!(!last.status.success());
    assert!(String::from_utf8_lossy(&last.stderr).contains("last admin key"));

    // The budget: a number, 0 for unlimited, or the server's default.
    for (value, shown) in [
        ("5", json!(5)),
        ("0", Value::Null),
        ("default", Value::Null),
    ] {
        let set = cli(&app, &["accounts", "budget", &id, value]);
        assert!(set.status.success(), "{set:?}");
        let account: Value = app.get("/account").await.json().await.unwrap();
        assert_eq!(account["limits"]["daily_invitations"], shown, "{value}");
    }
    for bad in [
        ["accounts", "budget", &id, "-3"],
        ["accounts", "budget", "no-such-id", "5"],
    ] {
        assert!(!cli(&app, &bad).status.success(), "{bad:?}");
    }
}
