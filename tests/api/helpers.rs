//! `spawn_app` and friends: a fresh database and server per test.

use bulk_invite::config::ServeConfig;
use bulk_invite::db::{self, DbUrl};
use bulk_invite::startup::Application;
use diesel::{Connection, RunQueryDsl};
use reqwest::{Client, Response};
use serde_json::Value;

/// Runs each named `async fn(TestApp)` against SQLite and PostgreSQL.
#[macro_export]
macro_rules! both_backends {
    (backend: $($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if $crate::helpers::postgres_available() {
                        super::$name($crate::helpers::Backend::Postgres).await;
                    }
                }
            )*
        }
    };
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let app = $crate::helpers::TestApp::spawn($crate::helpers::Backend::Sqlite).await;
                    super::$name(app).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(app) = $crate::helpers::TestApp::spawn_postgres().await else { return };
                    super::$name(app).await;
                }
            )*
        }
    };
}

/// Which database a test app runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A running app with its own database and an account.
pub struct TestApp {
    pub address: String,
    /// The database the app runs on, for worker processes.
    pub database_url: String,
    pub api_key: String,
    pub pool: db::Pool,
    pub client: Client,
    _dir: Option<tempfile::TempDir>,
    postgres: Option<(String, String)>,
    stop: bulk_invite::startup::StopHandle,
}

/// The smallest upload limit tests use when they check 413.
pub const SMALL_LIMIT: u64 = 64 * 1024;

impl TestApp {
    /// An app on a fresh database of `backend` (PostgreSQL: panics without a URL).
    pub async fn spawn(backend: Backend) -> TestApp {
        Self::spawn_with(backend, |_| {}).await
    }

    /// An app on PostgreSQL, or `None` (with a note) when no server is
    /// configured outside CI. In CI a missing URL fails the test.
    pub async fn spawn_postgres() -> Option<TestApp> {
        if !postgres_available() {
            return None;
        }
        Some(Self::spawn(Backend::Postgres).await)
    }

    /// An app whose server settings `configure` may change.
    pub async fn spawn_with(backend: Backend, configure: impl FnOnce(&mut ServeConfig)) -> TestApp {
        Self::spawn_tuned(backend, |_| {}, configure).await
    }

    /// An app whose pool settings `tune` and server settings `configure`
    /// may change.
    pub async fn spawn_tuned(
        backend: Backend,
        tune: impl FnOnce(&mut db::PoolSettings),
        configure: impl FnOnce(&mut ServeConfig),
    ) -> TestApp {
        let mut dir = None;
        let mut postgres = None;
        let url = match backend {
            Backend::Sqlite => {
                let tmp = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", tmp.path().join("test.db").display());
                dir = Some(tmp);
                url
            }
            Backend::Postgres => {
                let admin = std::env::var("TEST_POSTGRES_URL")
                    .expect("TEST_POSTGRES_URL must name a PostgreSQL server (CI sets it)");
                let name = format!("bulk_invite_test_{}", uuid::Uuid::new_v4().simple());
                let url = create_database(&admin, &name);
                postgres = Some((admin, name));
                url
            }
        };
        // A short wait for connections: once a test's database is dropped,
        // a dispatcher step still in flight gives up quickly. A small pool:
        // tests run side by side within PostgreSQL's 100 connections.
        let mut settings = db::PoolSettings {
            max_size: Some(6),
            timeout: std::time::Duration::from_secs(2),
            ..db::PoolSettings::default()
        };
        tune(&mut settings);
        let pool = db::connect_with(&DbUrl::parse(&url), settings).expect("pool");
        let url = url.clone();
        db::migrate(&mut pool.get().expect("connection")).expect("migrations");
        let api_key = db::keys::generate();
        db::accounts::create(&mut pool.get().expect("connection"), "Acme", &api_key)
            .expect("account");
        let (address, stop) = serve(&url, settings, pool.clone(), configure).await;
        TestApp {
            address,
            database_url: url,
            api_key,
            pool,
            client: Client::new(),
            _dir: dir,
            postgres,
            stop,
        }
    }

    /// Creates another account and returns its API key.
    pub fn create_account(&self, name: &str) -> String {
        let key = db::keys::generate();
        db::accounts::create(&mut self.pool.get().expect("connection"), name, &key)
            .expect("account");
        key
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// A GET with the account's key.
    pub async fn get(&self, path: &str) -> Response {
        self.get_as(&self.api_key, path).await
    }

    /// A GET with the given key.
    pub async fn get_as(&self, key: &str, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(key)
            .send()
            .await
            .expect("request")
    }

    /// Uploads `body` as the multipart part `file` named `team.txt`.
    pub async fn upload(&self, body: impl Into<Vec<u8>>) -> Response {
        self.upload_as(&self.api_key, body).await
    }

    /// Uploads `body` as the multipart part `file`, with the given key.
    pub async fn upload_as(&self, key: &str, body: impl Into<Vec<u8>>) -> Response {
        let part = reqwest::multipart::Part::bytes(body.into()).file_name("team.txt");
        let form = reqwest::multipart::Form::new().part("file", part);
        self.upload_form_as(key, form).await
    }

    /// Posts a multipart form to `/imports` with the account's key.
    pub async fn upload_form(&self, form: reqwest::multipart::Form) -> Response {
        self.upload_form_as(&self.api_key, form).await
    }

    async fn upload_form_as(&self, key: &str, form: reqwest::multipart::Form) -> Response {
        self.client
            .post(self.url("/imports"))
            .bearer_auth(key)
            .multipart(form)
            .send()
            .await
            .expect("request")
    }

    /// Uploads `body` as a raw text/plain body.
    pub async fn upload_text(&self, body: impl Into<Vec<u8>>) -> Response {
        self.post_text("/imports", body).await
    }

    /// POSTs `body` as text/plain to `path` with the app's key.
    pub async fn post_text(&self, path: &str, body: impl Into<Vec<u8>>) -> Response {
        self.client
            .post(self.url(path))
            .bearer_auth(&self.api_key)
            .header("Content-Type", "text/plain")
            .body(body.into())
            .send()
            .await
            .expect("request")
    }

    /// Previews `body` (a text/plain dry run) and returns its JSON
    /// (asserting 200).
    pub async fn preview(&self, body: impl Into<Vec<u8>>) -> Value {
        let response = self.post_text("/imports/preview", body).await;
        assert_eq!(response.status(), 200, "preview failed");
        response.json().await.expect("preview JSON")
    }

    /// Uploads and returns the created import's JSON (asserting 201).
    pub async fn import(&self, body: impl Into<Vec<u8>>) -> Value {
        let response = self.upload(body).await;
        assert_eq!(response.status(), 201, "upload failed");
        response.json().await.expect("import JSON")
    }

    /// Every report entry of an import, following the cursors.
    pub async fn report(&self, id: &str) -> Vec<Value> {
        let mut entries = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/imports/{id}/report?limit=1000");
            if let Some(cursor) = &cursor {
                path.push_str(&format!("&cursor={cursor}"));
            }
            let page: Value = self.get(&path).await.json().await.expect("report JSON");
            entries.extend(page["entries"].as_array().expect("entries").iter().cloned());
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return entries,
            }
        }
    }

    /// Adds users to the account.
    pub async fn add_users(&self, emails: &[&str]) -> Value {
        let response = self
            .client
            .post(self.url("/users"))
            .bearer_auth(&self.api_key)
            .json(&serde_json::json!({ "emails": emails }))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 200);
        response.json().await.expect("users JSON")
    }

    /// This app's PostgreSQL URL asking for `sslmode=prefer`, which libpq
    /// may take over TLS: a server given it reads through its blocking
    /// pool, never over the workers' own connections (`db::async_pg`).
    pub fn database_url_tls_preferred(&self) -> String {
        let separator = if self.database_url.contains('?') {
            '&'
        } else {
            '?'
        };
        format!("{}{separator}sslmode=prefer", self.database_url)
    }

    /// Puts `email` (an address key) on the suppression list of every
    /// account, as a bounce would.
    pub fn suppress(&self, email: &str) {
        self.execute(&format!(
            "INSERT INTO suppressions (account_id, email_key, email, reason, created_at) \
             SELECT id, '{email}', '{email}', 'bounced', created_at FROM accounts"
        ));
    }

    /// How many imports the account's history holds.
    pub async fn history_len(&self) -> usize {
        let history: Value = self
            .get("/imports?limit=1000")
            .await
            .json()
            .await
            .expect("JSON");
        history["imports"].as_array().expect("imports").len()
    }

    /// Runs an SQL statement straight on the database (to arrange a state
    /// that would otherwise take days, like an expiry).
    pub fn execute(&self, sql: &str) {
        let mut conn = self.pool.get().expect("connection");
        diesel::sql_query(sql)
            .execute(&mut *conn)
            .expect("statement");
    }

    /// How many rows a table holds, straight from the database.
    pub fn count_rows(&self, table: &str) -> i64 {
        self.count_where(table, "1 = 1")
    }

    /// How many rows of a table match an SQL condition.
    pub fn count_where(&self, table: &str, condition: &str) -> i64 {
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = self.pool.get().expect("connection");
        diesel::sql_query(format!(
            "SELECT COUNT(*) AS n FROM {table} WHERE {condition}"
        ))
        .get_result::<Count>(&mut *conn)
        .expect("count")
        .n
    }
}

/// An invitation row as the database holds it.
#[derive(Debug, diesel::Queryable)]
pub struct StoredInvitation {
    pub id: String,
    pub status: String,
    pub attempts: i32,
    pub lease_owner: Option<String>,
    pub provider_message_id: Option<String>,
    pub token_hash: Option<String>,
    pub last_error: Option<String>,
    pub sent_at: Option<chrono::NaiveDateTime>,
    pub expires_at: Option<chrono::NaiveDateTime>,
}

impl TestApp {
    /// The invitation of an address, straight from the database.
    pub fn invitation_by_email(&self, email: &str) -> StoredInvitation {
        use bulk_invite::db::schema::invitations::dsl as i;
        use diesel::prelude::*;
        let mut conn = self.pool.get().expect("connection");
        i::invitations
            .filter(i::email.eq(email))
            .select((
                i::id,
                i::status,
                i::attempts,
                i::lease_owner,
                i::provider_message_id,
                i::token_hash,
                i::last_error,
                i::sent_at,
                i::expires_at,
            ))
            .first(&mut *conn)
            .expect("invitation")
    }
}

/// Polls `check` until it gives a value, failing the test after `timeout`.
pub async fn wait_until<T, F, Fut>(timeout: std::time::Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {timeout:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop.stop();
        if let Some((admin, name)) = &self.postgres {
            if let Ok(mut conn) = diesel::PgConnection::establish(admin) {
                let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn);
            }
        }
    }
}

/// Builds and starts a server on the database of `url` with `pool`, the
/// tests' settings and what `configure` changes; its address and its stop.
async fn serve(
    url: &str,
    settings: db::PoolSettings,
    pool: db::Pool,
    configure: impl FnOnce(&mut ServeConfig),
) -> (String, bulk_invite::startup::StopHandle) {
    let mut config = ServeConfig::with_bind_addr("127.0.0.1:0");
    config.http_workers = Some(2);
    // Most tests look at invitations as imported; dispatch tests turn it on.
    config.dispatcher = false;
    // Tests about the request rate and uploads at once turn those on.
    config.limits.rate_limit_per_minute = 0;
    config.limits.max_concurrent_imports_per_account = 0;
    configure(&mut config);
    // The API's reads get a pool of their own on PostgreSQL, as `serve`
    // gives them (two connections: tests share the server's 100).
    let reads = db::connect_reads(&DbUrl::parse(url), settings, 2).expect("read pool");
    let app = Application::build_with_reads(config, pool, reads)
        .await
        .expect("app");
    let address = format!("http://{}", app.address());
    let stop = app.stop_handle();
    tokio::spawn(app.run_until_stopped());
    (address, stop)
}

/// A second server beside a [`TestApp`], on the same database reached by
/// another URL; it stops when dropped (the database stays the app's).
pub struct Beside {
    pub address: String,
    stop: bulk_invite::startup::StopHandle,
}

impl TestApp {
    /// A second server on this app's database, reached by `url`.
    pub async fn beside(&self, url: &str) -> Beside {
        let settings = db::PoolSettings {
            max_size: Some(2),
            timeout: std::time::Duration::from_secs(2),
            ..db::PoolSettings::default()
        };
        let pool = db::connect_with(&DbUrl::parse(url), settings).expect("pool");
        let (address, stop) = serve(url, settings, pool, |_| {}).await;
        Beside { address, stop }
    }
}

impl Drop for Beside {
    fn drop(&mut self) {
        self.stop.stop();
    }
}

/// Whether the PostgreSQL run of a test should happen: yes when
/// `TEST_POSTGRES_URL` is set, and always in CI (where a missing URL then
/// fails the test instead of skipping it).
pub fn postgres_available() -> bool {
    if std::env::var("TEST_POSTGRES_URL").is_err() && std::env::var("CI").is_err() {
        eprintln!("TEST_POSTGRES_URL is not set: skipping the PostgreSQL run of this test");
        return false;
    }
    true
}

/// Creates the database `name` on the server of `admin`; returns its URL.
pub fn create_database(admin: &str, name: &str) -> String {
    let mut conn = diesel::PgConnection::establish(admin).expect("connect to TEST_POSTGRES_URL");
    diesel::sql_query(format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .expect("create test database");
    let (base, _) = admin.rsplit_once('/').expect("URL with a database path");
    let query = admin
        .split_once('?')
        .map(|(_, q)| format!("?{q}"))
        .unwrap_or_default();
    format!("{base}/{name}{query}")
}

/// Asserts a problem+json answer with the given status and type slug, and
/// returns its detail.
pub async fn assert_problem(response: Response, status: u16, slug: &str) -> String {
    let got = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = response.text().await.expect("body");
    assert_eq!(got, status, "status of {body}");
    assert_eq!(content_type, "application/problem+json");
    let problem: Value = serde_json::from_str(&body).expect("problem JSON");
    assert_eq!(problem["type"], format!("/problems/{slug}"), "{problem}");
    assert_eq!(problem["status"], status);
    assert!(problem["title"].as_str().is_some_and(|t| !t.is_empty()));
    problem["detail"].as_str().expect("detail").to_owned()
}

/// The counts of an import JSON, checking that they add up.
pub fn counts(import: &Value) -> &Value {
    let c = &import["counts"];
    let n = |k: &str| c[k].as_i64().unwrap_or_else(|| panic!("count {k}"));
    assert_eq!(
        n("entries"),
        n("invalid")
            + n("duplicate")
            + n("existing_user")
            + n("suppressed")
            + n("already_invited")
            + n("invited"),
        "counts add up: {c}"
    );
    let invitation_states = [
        "queued",
        "sent",
        "failed",
        "delivered",
        "bounced",
        "complained",
        "accepted",
        "expired",
        "revoked",
    ];
    assert_eq!(
        n("invited"),
        invitation_states.iter().map(|k| n(k)).sum::<i64>()
    );
    c
}

/// The statuses of report entries, in order.
pub fn statuses(entries: &[Value]) -> Vec<&str> {
    entries
        .iter()
        .map(|e| e["status"].as_str().expect("status"))
        .collect()
}
