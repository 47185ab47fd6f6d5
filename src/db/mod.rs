//! The database: one connection type over SQLite and PostgreSQL, its pool,
//! the embedded migrations, and the queries, one file per resource.

#[macro_use]
pub mod macros;
pub mod accounts;
pub mod address_rule;
pub mod async_pg;
pub mod budget;
mod checkpoint;
pub mod dispatch;
pub mod erase;
pub mod events;
pub mod imports;
pub mod invitations;
pub mod keys;
pub mod known;
pub mod lifecycle;
mod loopback;
pub mod metrics;
pub mod models;
mod record_pg;
pub mod reports;
pub mod resend;
pub mod revoke;
pub mod schema;
#[cfg(test)]
pub(crate) mod scratch;
mod shared_insert;
mod staged_pg;
pub mod suppressions;
pub mod users;

use diesel::connection::SimpleConnection;
use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::pg::PgConnection;
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, QueryResult, QueryableByName, RunQueryDsl};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use std::time::Duration;

pub use checkpoint::{checkpoint, DEFAULT_WAL_LIMIT_BYTES};

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// A connection to whichever backend `DATABASE_URL` names.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    /// PostgreSQL, for production and for several processes.
    Pg(PgConnection),
    /// SQLite, the embedded default.
    Sqlite(SqliteConnection),
}

/// The pool every request and job takes its connection from.
pub type Pool = r2d2::Pool<Manager>;
/// A connection checked out of the [`Pool`].
pub type PooledConnection = r2d2::PooledConnection<Manager>;

/// Errors of the data layer.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No connection could be had from the pool.
    #[error("no database connection available: {0}")]
    Pool(#[from] r2d2::Error),
    /// A query failed.
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    /// Migrations failed to run.
    #[error("database migration failed: {0}")]
    Migration(String),
    /// Queueing would pass the account's daily invitation budget; nothing
    /// was written.
    #[error(transparent)]
    BudgetExceeded(#[from] budget::Exceeded),
}

/// Which backend a database URL names, and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbUrl {
    /// `postgres://...` or `postgresql://...`, passed to libpq as it is.
    Postgres(String),
    /// A file path (`sqlite://path`, `sqlite:path` or a bare path).
    Sqlite(String),
}

impl DbUrl {
    /// Reads `DATABASE_URL`: a `postgres://` URL selects PostgreSQL, anything
    /// else is a SQLite file.
    pub fn parse(url: &str) -> DbUrl {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return DbUrl::Postgres(url.to_owned());
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        DbUrl::Sqlite(path.to_owned())
    }

    /// Whether this is a PostgreSQL URL.
    pub fn is_postgres(&self) -> bool {
        matches!(self, DbUrl::Postgres(_))
    }
}

/// Opens connections for r2d2, choosing the backend by the URL's scheme
/// (diesel's own manager would try each backend in turn, and a PostgreSQL
/// URL that fails to connect would then create a SQLite file of that name).
#[derive(Debug, Clone)]
pub struct Manager {
    url: DbUrl,
    statement_timeout: Option<Duration>,
    wal_limit_bytes: u64,
    /// PostgreSQL: plan each statement once per session (see
    /// [`connect_reads`]).
    generic_plans: bool,
}

impl Manager {
    /// How long one statement may run (`None`: no limit).
    pub fn statement_timeout(&self) -> Option<Duration> {
        self.statement_timeout.filter(|t| !t.is_zero())
    }

    /// PostgreSQL: the settings each new session of the pool starts with.
    fn pg_session_settings(&self) -> String {
        let ms = self.statement_timeout.map_or(0, |t| t.as_millis());
        // No JIT: it compiles each batch's lookups of an import anew
        // (2-3 ms each, more than some of them take to run) and gains
        // nothing on statements of this size.
        let plans = if self.generic_plans {
            "; SET plan_cache_mode = force_generic_plan"
        } else {
            ""
        };
        format!("SET statement_timeout = {ms}; SET jit = off{plans}")
    }
}

impl r2d2::ManageConnection for Manager {
    type Connection = DbConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<DbConnection, Self::Error> {
        let conn = match &self.url {
            DbUrl::Postgres(url) => {
                let sslmode_from_env = std::env::var_os("PGSSLMODE").is_some();
                let url = loopback::without_tls_on_loopback(url, sslmode_from_env);
                let mut conn =
                    PgConnection::establish(&url).map_err(Self::Error::ConnectionError)?;
                conn.batch_execute(&self.pg_session_settings())
                    .map_err(Self::Error::QueryError)?;
                DbConnection::Pg(conn)
            }
            DbUrl::Sqlite(path) => {
                sqlite_multithread();
                let mut conn =
                    SqliteConnection::establish(path).map_err(Self::Error::ConnectionError)?;
                // WAL lets readers go on while an import writes; the busy
                // timeout (the statement timeout) queues writers instead of
                // failing them at once. Checkpoints run in the background
                // (see `checkpoint`), not inside the commit of whichever
                // request crosses the threshold; the journal size limit is
                // the WAL size past which they truncate.
                let busy_ms = self
                    .statement_timeout
                    .map_or(i32::MAX as u128, |t| t.as_millis());
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = {busy_ms}; PRAGMA page_size = 16384; \
                     PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                     PRAGMA foreign_keys = ON; PRAGMA wal_autocheckpoint = 0; \
                     PRAGMA journal_size_limit = {};",
                    self.wal_limit_bytes
                ))
                .map_err(Self::Error::QueryError)?;
                DbConnection::Sqlite(conn)
            }
        };
        Ok(conn)
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), Self::Error> {
        conn.batch_execute("SELECT 1")
            .map_err(Self::Error::QueryError)
    }

    /// Whether [`with_pooled`] found this connection dead after a failure
    /// on this thread (connections are not tested on every checkout).
    fn has_broken(&self, _conn: &mut DbConnection) -> bool {
        LOST.with(|lost| lost.replace(false))
    }
}

thread_local! {
    /// Set when the connection about to go back to the pool no longer
    /// answers; read (and cleared) by [`Manager::has_broken`] as it goes back.
    static LOST: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// A read that had no answer within the statement timeout, counted from
/// when it asked (queued behind other reads included): the database is
/// busy, as when a statement times out.
#[derive(Debug, thiserror::Error)]
#[error("no answer from the database within the statement timeout ({0:?})")]
pub struct Unanswered(pub Duration);

impl Unanswered {
    /// `read`'s answer, or [`Unanswered`] once `deadline` has passed (no
    /// deadline: no limit). A read given up is dropped where it stands.
    pub async fn within<T, E: From<Unanswered>>(
        deadline: Option<Duration>,
        read: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        match deadline {
            Some(limit) => tokio::time::timeout(limit, read)
                .await
                .unwrap_or_else(|_| Err(Unanswered(limit).into())),
            None => read.await,
        }
    }
}

/// An error after which the connection may be dead: anything but an answer
/// the caller chose (a 404, a refusal), which says nothing of the database.
pub trait MayBeLost {
    fn may_be_lost(&self) -> bool;
}

impl MayBeLost for anyhow::Error {
    fn may_be_lost(&self) -> bool {
        true
    }
}

impl MayBeLost for DbError {
    /// A budget refusal is the data layer's own answer.
    fn may_be_lost(&self) -> bool {
        !matches!(self, DbError::BudgetExceeded(_))
    }
}

/// Runs `f` on a connection of the pool. Connections are not tested with
/// a query each time they are checked out (a round trip per request on
/// PostgreSQL); instead, after `f` fails, the connection is asked `SELECT
/// 1`, and one that does not answer (a restarted server, a cut network) is
/// dropped instead of going back to the pool.
pub fn with_pooled<T, E>(
    pool: &Pool,
    f: impl FnOnce(&mut DbConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<r2d2::Error> + MayBeLost,
{
    let mut conn = pool.get()?;
    let result = f(&mut conn);
    give_back(conn, result.as_ref().is_err_and(MayBeLost::may_be_lost));
    result
}

/// Gives `conn` back to the pool; after a failure that may have lost it
/// (`suspect`), it is asked `SELECT 1` first and dropped if it does not
/// answer.
pub fn give_back(mut conn: PooledConnection, suspect: bool) {
    if suspect && conn.batch_execute("SELECT 1").is_err() {
        LOST.with(|lost| lost.set(true));
    }
    // `conn` goes back to the pool here, on this thread, after the flag.
    drop(conn);
}

/// How the pool is sized and how long a caller waits for a connection.
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    /// Connections at most (default: 16 on PostgreSQL, 8 on SQLite).
    pub max_size: Option<u32>,
    /// How long `get` waits for a free connection.
    pub timeout: Duration,
    /// How long one statement may run (PostgreSQL `statement_timeout`;
    /// SQLite's busy timeout); `None`: no limit.
    pub statement_timeout: Option<Duration>,
    /// SQLite: the write-ahead log size past which [`checkpoint`] empties
    /// it (default [`DEFAULT_WAL_LIMIT_BYTES`]).
    pub wal_limit_bytes: u64,
}

impl Default for PoolSettings {
    fn default() -> PoolSettings {
        PoolSettings {
            max_size: None,
            timeout: Duration::from_secs(10),
            statement_timeout: Some(Duration::from_secs(30)),
            wal_limit_bytes: DEFAULT_WAL_LIMIT_BYTES,
        }
    }
}

/// Puts SQLite in multi-thread mode before its first connection: a pooled
/// connection is only ever used by one thread at a time, so SQLite's own
/// per-call mutex (serialized mode, its default) is pure cost.
fn sqlite_multithread() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: sqlite3_config must run before SQLite is initialised, i.e.
        // before any connection opens; `Once` makes this the first and only
        // call, made ahead of the first `establish`. If SQLite was already
        // initialised it returns SQLITE_MISUSE and nothing changes.
        let rc =
            unsafe { libsqlite3_sys::sqlite3_config(libsqlite3_sys::SQLITE_CONFIG_MULTITHREAD) };
        if rc != libsqlite3_sys::SQLITE_OK {
            tracing::debug!(rc, "SQLite stays in serialized mode");
        }
    });
}

/// The compile options `.cargo/config.toml` gives the bundled SQLite that
/// this build's SQLite lacks.
pub fn missing_sqlite_options(conn: &mut DbConnection) -> QueryResult<Vec<&'static str>> {
    #[derive(QueryableByName)]
    struct CompileOption {
        #[diesel(sql_type = diesel::sql_types::Text)]
        compile_options: String,
    }
    let have: Vec<String> = diesel::sql_query("PRAGMA compile_options")
        .load::<CompileOption>(conn)?
        .into_iter()
        .map(|o| o.compile_options)
        .collect();
    Ok(["ENABLE_QPSG", "DEFAULT_MEMSTATUS=0"]
        .into_iter()
        .filter(|option| !have.iter().any(|h| h == option))
        .collect())
}

/// Builds the pool for `url` (connections are opened lazily but one is
/// checked at once, so a wrong URL fails at start).
pub fn connect(url: &DbUrl) -> Result<Pool, DbError> {
    connect_with(url, PoolSettings::default())
}

/// Like [`connect`], with the given pool settings.
pub fn connect_with(url: &DbUrl, settings: PoolSettings) -> Result<Pool, DbError> {
    let default_size = if url.is_postgres() { 16 } else { 8 };
    let size = settings.max_size.unwrap_or(default_size);
    let manager = manager(url, settings, false);
    if !url.is_postgres() {
        // A new file takes its page size and WAL mode from its first
        // connection. The pool opens all of its connections at once, and
        // those racing that switch would fail with "database is locked"
        // (which r2d2 logs as an error before trying again). A failure
        // here shows again, as the pool's own, just below.
        let _ = r2d2::ManageConnection::connect(&manager);
    }
    let pool = build_pool(manager, settings, size)?;
    if !url.is_postgres() {
        let missing = missing_sqlite_options(&mut *pool.get()?)?;
        if !missing.is_empty() {
            tracing::warn!(
                ?missing,
                "SQLite was built without the options .cargo/config.toml sets; reads are slower"
            );
        }
    }
    Ok(pool)
}

/// PostgreSQL: a second, smaller pool for the API's keyset reads (an
/// import, a page of its report, a page of the history; see
/// `api::read`), whose sessions plan each of their statements once
/// (`plan_cache_mode = force_generic_plan`). Their plans do not depend on
/// the values bound (an id, a cursor, a limit), but PostgreSQL cannot tell:
/// a `LIMIT $n` makes its generic plan look costlier than a plan for the
/// values at hand, so it planned a report page again on every request, a
/// third of the page's time in the server. The main pool's statements keep
/// the default: some of theirs do depend on their values. `None` on SQLite,
/// which plans once per prepared statement anyway.
pub fn connect_reads(
    url: &DbUrl,
    settings: PoolSettings,
    size: u32,
) -> Result<Option<ReadPool>, DbError> {
    if !url.is_postgres() {
        return Ok(None);
    }
    let manager = manager(url, settings, true);
    Ok(Some(ReadPool {
        pool: build_pool(manager.clone(), settings, size.max(1))?,
        manager,
    }))
}

/// The pool of the keyset reads ([`connect_reads`]), and how its
/// connections are made (for [`async_pg`]).
pub struct ReadPool {
    pub pool: Pool,
    manager: Manager,
}

impl ReadPool {
    /// How long one of its statements may run (`None`: no limit).
    pub fn statement_timeout(&self) -> Option<Duration> {
        self.manager.statement_timeout()
    }
}

fn manager(url: &DbUrl, settings: PoolSettings, generic_plans: bool) -> Manager {
    Manager {
        url: url.clone(),
        statement_timeout: settings.statement_timeout,
        wal_limit_bytes: settings.wal_limit_bytes,
        generic_plans,
    }
}

fn build_pool(manager: Manager, settings: PoolSettings, size: u32) -> Result<Pool, DbError> {
    Ok(r2d2::Pool::builder()
        .max_size(size)
        .connection_timeout(settings.timeout)
        // Not a query per checkout: `with_pooled` drops a connection found
        // dead after a failure.
        .test_on_check_out(false)
        .build(manager)?)
}

/// Whether a query failed because the database is busy or out of reach (a
/// statement or lock timeout, SQLite's lock still held after its busy
/// timeout, a lost connection) rather than because of the query: such a
/// request may succeed when tried again.
pub fn is_unavailable(error: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    match error {
        // The second: a connection of `async_pg` whose server went away.
        Error::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _,
        ) => true,
        Error::DatabaseError(_, info) => {
            let message = info.message();
            // PostgreSQL: statement_timeout and lock_timeout (SQLSTATE 57014
            // and 55P03), a session the server ended (57P01-57P03, as
            // `async_pg`'s connections report it); SQLite: SQLITE_BUSY.
            message.contains("canceling statement due to")
                || message.starts_with("terminating connection")
                || message.contains("could not obtain lock")
                || message.contains("database is locked")
                || message.contains("database table is locked")
        }
        _ => false,
    }
}

/// Runs the pending migrations of the connection's backend, without the
/// statement timeout (building an index on a large table may take longer).
pub fn migrate(conn: &mut DbConnection) -> Result<(), DbError> {
    let result = match conn {
        DbConnection::Pg(c) => {
            let timeout = postgres_statement_timeout(c)?;
            c.batch_execute("SET statement_timeout = 0")?;
            let result = c.run_pending_migrations(POSTGRES_MIGRATIONS).map(|_| ());
            c.batch_execute(&format!("SET statement_timeout = '{timeout}'"))?;
            result
        }
        DbConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(|_| ()),
    };
    result.map_err(|e| DbError::Migration(e.to_string()))
}

fn postgres_statement_timeout(conn: &mut PgConnection) -> Result<String, DbError> {
    #[derive(diesel::QueryableByName)]
    struct Setting {
        #[diesel(sql_type = diesel::sql_types::Text)]
        statement_timeout: String,
    }
    let setting: Setting = diesel::sql_query("SHOW statement_timeout").get_result(conn)?;
    Ok(setting.statement_timeout)
}

/// Runs `f` in a write transaction. On SQLite it is `BEGIN IMMEDIATE`, so
/// the write lock is taken up front and two writers queue instead of one
/// failing half-way on a lock upgrade.
pub fn write_transaction<T, E>(
    conn: &mut DbConnection,
    f: impl FnOnce(&mut DbConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<diesel::result::Error>,
{
    type Manager = <DbConnection as Connection>::TransactionManager;
    let outermost_sqlite = match conn {
        DbConnection::Sqlite(c) => <AnsiTransactionManager as TransactionManager<
            SqliteConnection,
        >>::transaction_manager_status_mut(c)
        .transaction_depth()?
        .is_none(),
        DbConnection::Pg(_) => false,
    };
    // Inside a transaction, diesel nests with a savepoint.
    match conn {
        DbConnection::Sqlite(c) if outermost_sqlite => {
            AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?
        }
        _ => Manager::begin_transaction(conn)?,
    }
    match f(conn) {
        Ok(value) => {
            Manager::commit_transaction(conn)?;
            Ok(value)
        }
        Err(e) => {
            // The error that made us roll back is the one worth reporting.
            let _ = Manager::rollback_transaction(conn);
            Err(e)
        }
    }
}

/// The current time in UTC, truncated to microseconds so both backends
/// store and return the same value.
pub fn now() -> chrono::NaiveDateTime {
    use chrono::SubsecRound;
    chrono::Utc::now().naive_utc().trunc_subsecs(6)
}
