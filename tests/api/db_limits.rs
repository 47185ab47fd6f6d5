//! Database time limits: a request stuck behind a lock answers 503 with
//! `Retry-After` once the statement timeout passes, instead of waiting for
//! the lock; `/readyz` answers 503 while no connection can be had.

use crate::both_backends;
use crate::helpers::{assert_problem, Backend, TestApp};
use crate::served::Served;
use bulk_invite::db::DbUrl;
use diesel::connection::SimpleConnection;
use diesel::Connection;
use std::time::{Duration, Instant};

both_backends!(
    backend:
    a_request_behind_a_lock_answers_503_after_the_statement_timeout,
);

/// Holds a write lock on a table (on SQLite: the database) until released.
enum Lock {
    Pg(diesel::PgConnection),
    Sqlite(diesel::SqliteConnection),
}

impl Lock {
    fn take(database_url: &str, table: &str) -> Lock {
        match DbUrl::parse(database_url) {
            DbUrl::Postgres(url) => {
                let mut conn = diesel::PgConnection::establish(&url).expect("connect");
                conn.batch_execute(&format!(
                    "BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"
                ))
                .expect("lock");
                Lock::Pg(conn)
            }
            DbUrl::Sqlite(path) => {
                let mut conn = diesel::SqliteConnection::establish(&path).expect("connect");
                conn.batch_execute("BEGIN EXCLUSIVE").expect("lock");
                Lock::Sqlite(conn)
            }
        }
    }

    fn release(self) {
        match self {
            Lock::Pg(mut c) => c.batch_execute("ROLLBACK").expect("unlock"),
            Lock::Sqlite(mut c) => c.batch_execute("ROLLBACK").expect("unlock"),
        }
    }
}

async fn a_request_behind_a_lock_answers_503_after_the_statement_timeout(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let served = Served::start(
        &app,
        &[
            ("DATABASE_STATEMENT_TIMEOUT_SECS", "2"),
            ("DATABASE_POOL_SIZE", "1"),
            ("DATABASE_POOL_TIMEOUT_SECS", "1"),
        ],
    )
    .await;
    let add_user = || {
        app.client
            .post(served.url("/users"))
            .bearer_auth(&app.api_key)
            .json(&serde_json::json!({ "emails": ["ann@example.com"] }))
            .send()
    };
    let database_url = app.database_url.clone();
    let lock = tokio::task::spawn_blocking(move || Lock::take(&database_url, "users"))
        .await
        .expect("lock");

    let started = Instant::now();
    let stuck = tokio::spawn(add_user());
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The only connection is held by the stuck request: not ready.
    let ready = app
        .client
        .get(served.url("/readyz"))
        .send()
        .await
        .expect("readyz");
    assert!(started.elapsed() < Duration::from_millis(1900));
    assert_eq!(
        ready.headers().get("retry-after").map(|v| v.to_str().ok()),
        Some(Some("5"))
    );
    assert_problem(ready, 503, "not-ready").await;

    let response = stuck.await.expect("task").expect("response");
    let took = started.elapsed();
    assert_unavailable_after_the_timeout(response, took).await;
    println!("a request behind a lock answered 503 after {took:?}");

    tokio::task::spawn_blocking(move || lock.release())
        .await
        .expect("unlock");
    let ready = app
        .client
        .get(served.url("/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 200);
    assert_eq!(add_user().await.expect("response").status(), 200);
}

/// A 503 `unavailable` with `Retry-After: 5`, `took` about the statement
/// timeout of 2 s.
async fn assert_unavailable_after_the_timeout(response: reqwest::Response, took: Duration) {
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(6),
        "{took:?}"
    );
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().ok()),
        Some(Some("5"))
    );
    assert_problem(response, 503, "unavailable").await;
}

/// PostgreSQL's keyset reads run on the HTTP workers' own connections
/// (`db::async_pg`), which start with the pool's session settings: a
/// history page behind a lock answers 503 once the statement timeout
/// passes, and the next one, the lock gone, 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_behind_a_lock_answers_503_after_the_statement_timeout_on_postgres() {
    let Some(app) = TestApp::spawn_postgres().await else {
        return;
    };
    let served = Served::start(&app, &[("DATABASE_STATEMENT_TIMEOUT_SECS", "2")]).await;
    let list = || {
        app.client
            .get(served.url("/imports"))
            .bearer_auth(&app.api_key)
            .send()
    };
    assert_eq!(list().await.expect("response").status(), 200);
    let database_url = app.database_url.clone();
    let lock = tokio::task::spawn_blocking(move || Lock::take(&database_url, "imports"))
        .await
        .expect("lock");

    let started = Instant::now();
    let response = list().await.expect("response");
    let took = started.elapsed();
    assert_unavailable_after_the_timeout(response, took).await;

    tokio::task::spawn_blocking(move || lock.release())
        .await
        .expect("unlock");
    assert_eq!(list().await.expect("response").status(), 200);
}

/// PostgreSQL's keyset reads share the workers' connections, each read's
/// statement queued behind those sent before it (`db::async_pg`): behind
/// a lock, every one of many reads at once answers 503 after about one
/// statement timeout, not one timeout for each read queued ahead of it;
/// once the lock is gone, reads answer again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_queued_behind_a_lock_answer_503_after_one_statement_timeout_on_postgres() {
    let Some(app) = TestApp::spawn_postgres().await else {
        return;
    };
    many_reads_behind_a_lock(&app, &app.database_url).await;
}

/// The same through the blocking pool (a URL libpq may take over TLS, so
/// the workers do not read from it): the reads waiting for one of its
/// turns (four here) do not each wait out the timeout again once they
/// have one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_waiting_for_a_turn_behind_a_lock_answer_503_after_one_statement_timeout() {
    let Some(app) = TestApp::spawn_postgres().await else {
        return;
    };
    many_reads_behind_a_lock(&app, &app.database_url_tls_preferred()).await;
}

/// 16 history pages at once, from a server of `app`'s database at `url`
/// with a statement timeout of 2 s, while `imports` is locked: each
/// answers 503 within the timeout's bounds; then, unlocked, 200.
async fn many_reads_behind_a_lock(app: &TestApp, url: &str) {
    let served = Served::start(
        app,
        &[
            ("DATABASE_URL", url),
            ("DATABASE_STATEMENT_TIMEOUT_SECS", "2"),
        ],
    )
    .await;
    let list = || {
        app.client
            .get(served.url("/imports"))
            .bearer_auth(&app.api_key)
            .send()
    };
    let warm = futures_util::future::join_all((0..16).map(|_| list())).await;
    assert!(warm
        .into_iter()
        .all(|r| r.expect("response").status() == 200));
    let database_url = app.database_url.clone();
    let lock = tokio::task::spawn_blocking(move || Lock::take(&database_url, "imports"))
        .await
        .expect("lock");

    let started = Instant::now();
    let answers = futures_util::future::join_all((0..16).map(|_| async {
        let response = list().await.expect("response");
        (response, started.elapsed())
    }))
    .await;
    for (response, took) in answers {
        assert_unavailable_after_the_timeout(response, took).await;
    }

    tokio::task::spawn_blocking(move || lock.release())
        .await
        .expect("unlock");
    assert_eq!(list().await.expect("response").status(), 200);
}

/// The bundled SQLite is built as `.cargo/config.toml` says: statements are
/// not compiled again whenever a bound LIMIT changes, and allocations take
/// no global lock (issue 12's read path depends on both).
#[tokio::test]
async fn sqlite_is_built_for_cached_statements_and_unlocked_allocations() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let mut conn = app.pool.get().expect("connection");
    let missing = bulk_invite::db::missing_sqlite_options(&mut conn).expect("compile options");
    assert_eq!(missing, Vec::<&str>::new());
}

/// Connections are not tested on every checkout; when the server drops
/// them all (a restart, a failover), each dead one is found after the
/// request it fails and replaced, so the pool heals instead of answering
/// 503 forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_the_database_dropped_are_replaced() {
    let Some(app) = app_whose_connections_the_database_dropped().await else {
        return;
    };

    let refused = refused_before(200, |_| async { app.get("/imports").await.status() }).await;
    assert!(
        refused <= 6,
        "{refused} requests refused (the pool holds 6)"
    );
    for _ in 0..20 {
        assert_eq!(app.get("/imports").await.status(), 200);
    }
}

/// An import's second connection (for its lookups) is tested like its
/// first after a failure: when the database dropped them all, each failed
/// import takes two dead connections out of the pool, not one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_replace_both_their_connections_the_database_dropped() {
    let Some(app) = app_whose_connections_the_database_dropped().await else {
        return;
    };

    let refused = refused_before(201, |n| {
        let app = &app;
        async move {
            let import = app
                .client
                .post(app.url("/imports"))
                .bearer_auth(&app.api_key)
                .header("Content-Type", "text/plain")
                .body(format!("p{n}@x.io"))
                .send()
                .await;
            import.expect("response").status()
        }
    })
    .await;
    assert!(
        refused <= 3,
        "{refused} imports refused (the pool holds 6, two per import)"
    );
}

/// A PostgreSQL app whose pooled connections were all open and idle, then
/// ended by the database, as a restart would.
async fn app_whose_connections_the_database_dropped() -> Option<TestApp> {
    let app = TestApp::spawn_postgres().await?;
    let answers = futures_util::future::join_all((0..12).map(|_| app.get("/imports"))).await;
    assert!(answers.iter().all(|a| a.status() == 200));
    terminate_connections(&app);
    Some(app)
}

/// How many of up to 20 requests (`send(n)`, the `n`th) answered 503
/// before one answered `ok`; any other answer fails the test.
async fn refused_before<F>(ok: u16, send: impl Fn(usize) -> F) -> usize
where
    F: std::future::Future<Output = reqwest::StatusCode>,
{
    let mut refused = 0;
    for n in 0..20 {
        match send(n).await.as_u16() {
            code if code == ok => break,
            503 => refused += 1,
            other => panic!("answered {other}"),
        }
    }
    refused
}

/// Ends every connection to the app's database, as a restart would.
fn terminate_connections(app: &TestApp) {
    let admin = std::env::var("TEST_POSTGRES_URL").expect("TEST_POSTGRES_URL");
    let name = app
        .database_url
        .rsplit('/')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap();
    let mut conn = diesel::PgConnection::establish(&admin).expect("admin connection");
    conn.batch_execute(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
    ))
    .expect("terminate");
}

/// An import asks about its addresses on a second connection while it
/// writes; when a question fails (here: it waits behind a lock on `users`
/// past the statement timeout), the import fails with it and nothing of
/// it is written, not an import of the batches asked about before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_whose_lookups_fail_writes_nothing() {
    let Some(app) = TestApp::spawn_postgres().await else {
        return;
    };
    let served = Served::start(&app, &[("DATABASE_STATEMENT_TIMEOUT_SECS", "2")]).await;
    let database_url = app.database_url.clone();
    let lock = tokio::task::spawn_blocking(move || Lock::take(&database_url, "users"))
        .await
        .expect("lock");
    // Two batches on PostgreSQL (20,000 entries each).
    let file: Vec<String> = (0..30_000).map(|n| format!("p{n}@x.io")).collect();

    let response = app
        .client
        .post(served.url("/imports"))
        .bearer_auth(&app.api_key)
        .header("Content-Type", "text/plain")
        .body(file.join("\n"))
        .send()
        .await
        .expect("response");

    assert_problem(response, 503, "unavailable").await;
    tokio::task::spawn_blocking(move || lock.release())
        .await
        .expect("unlock");
    for table in ["imports", "import_entries", "invitations"] {
        assert_eq!(app.count_rows(table), 0, "{table}");
    }
}

/// Whether the connection's session is encrypted, and whether the server
/// offers TLS at all.
fn tls_of(pool: &bulk_invite::db::Pool) -> (bool, bool) {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Tls {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        session: bool,
        #[diesel(sql_type = diesel::sql_types::Bool)]
        offered: bool,
    }
    let mut conn = pool.get().expect("connection");
    let tls: Tls = diesel::sql_query(
        "SELECT s.ssl AS session, current_setting('ssl') = 'on' AS offered \
         FROM pg_stat_ssl s WHERE s.pid = pg_backend_pid()",
    )
    .get_result(&mut *conn)
    .expect("pg_stat_ssl");
    (tls.session, tls.offered)
}

/// A server on this machine is reached without TLS (which would encrypt
/// every row for a trip that never leaves the kernel), while a URL that
/// asks for TLS gets it.
#[tokio::test]
async fn a_loopback_server_is_reached_without_tls_unless_the_url_asks() {
    let Some(app) = TestApp::spawn_postgres().await else {
        return;
    };
    let host = app
        .database_url
        .split('@')
        .nth(1)
        .unwrap_or(&app.database_url);
    if !(host.starts_with("127.0.0.1") || host.starts_with("localhost"))
        || app.database_url.contains("sslmode")
        || std::env::var_os("PGSSLMODE").is_some()
    {
        eprintln!("TEST_POSTGRES_URL does not name this machine without an sslmode: skipped");
        return;
    }

    let (session, offered) = tls_of(&app.pool);
    assert!(!session, "the app's connection to {host} is encrypted");

    if !offered {
        eprintln!("the server has ssl = off: the sslmode=require half is skipped");
        return;
    }
    let separator = if app.database_url.contains('?') {
        '&'
    } else {
        '?'
    };
    let asked = format!("{}{separator}sslmode=require", app.database_url);
    let pool = bulk_invite::db::connect(&DbUrl::parse(&asked)).expect("pool with sslmode=require");
    assert_eq!(
        tls_of(&pool),
        (true, true),
        "sslmode=require was not honoured"
    );
}
