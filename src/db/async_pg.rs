//! PostgreSQL: the API's keyset reads asked from the HTTP worker itself,
//! over an asynchronous connection of that worker (diesel-async).
//!
//! A read through the blocking pool ([`crate::api::read`]) wakes a thread
//! of the blocking pool, which sends the query and sleeps on the socket
//! until the answer comes, then wakes the worker again: on a one-row read
//! here a fifth of all CPU went to waking threads and switching to them.
//! Here the worker sends the query and goes on serving other requests; the
//! answer wakes the worker itself, which was waiting for its sockets anyway.
//!
//! Each worker keeps its own one or two connections (their I/O runs on
//! that worker, so a read never crosses to another thread), made on first
//! use with the read pool's session settings and shared by the worker's
//! reads in flight, which queue their statements on them (pipelining).
//! They are used only where libpq would not encrypt either: tokio-postgres
//! speaks no TLS here, so only for a URL that says `sslmode=disable` or
//! that names loopback hosts only (see `loopback`); any other URL reads
//! through the blocking pool. When a connection cannot be made (the server
//! is down; tokio-postgres reads no `PG*` variables), reads go through the
//! blocking pool for a while, with a warning. A failure that may have lost
//! a connection retires every connection made before it, in every worker:
//! a restarted server answers one failed read per read in flight, not one
//! per connection it had.

use super::{loopback, Manager, MayBeLost, ReadPool, Unanswered};
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where the workers' asynchronous connections go, and how many each may
/// hold. Not `Debug`: its URL may hold a password.
pub struct Reads {
    /// Tells this server's connections from another's on the same thread.
    id: u64,
    url: String,
    /// Run once on each new connection: the read pool's session settings.
    setup: String,
    per_worker: usize,
    /// How long a read may wait for its answer, queued behind others
    /// included: the session's statement timeout (none when it has none).
    deadline: Option<Duration>,
    /// Until when (milliseconds after `started`) reads go to the blocking
    /// pool, since a connection could not be made.
    failed_until: AtomicU64,
    started: Instant,
    /// Counts the failures that may have lost a connection: a connection
    /// made before the last one is not used again (when the server
    /// restarted, every worker's idle connections are dead, not only the
    /// one that failed).
    losses: AtomicU64,
}

/// At most this many connections per worker. Reads share them (see
/// [`Reads::read`]), so more would only add backends taking turns on the
/// cores: on a 2-core machine, 32 clients reading report pages, two per
/// worker served 10,300-11,100 pages/s, four 10,200-10,700, one
/// 11,200-11,900 (and one connection each, not shared, 7,200-7,900). Two,
/// not one: a read held up in the server (a page read from disk) then
/// holds up only the reads behind it on its connection, while new reads
/// go to the other.
const CONNECTIONS_PER_WORKER: usize = 2;

/// How long reads go to the blocking pool after a connection could not be
/// made.
const RETRY_AFTER: Duration = Duration::from_secs(30);

/// A connection, and [`Reads::losses`] when it was made.
struct Conn {
    conn: AsyncPgConnection,
    made_after: u64,
}

/// One worker's connections to one database, each shared by the reads
/// in flight on it.
struct Worker {
    conns: RefCell<Vec<Rc<Conn>>>,
    /// Connections being made.
    making: Cell<usize>,
}

thread_local! {
    /// This thread's connections, by [`Reads::id`] (tests run several
    /// servers in one process).
    static WORKERS: RefCell<HashMap<u64, Rc<Worker>>> = RefCell::new(HashMap::new());
}

impl Reads {
    /// The asynchronous reads of the read pool `reads`, up to `per_worker`
    /// connections per HTTP worker; `None` when the URL may use TLS.
    pub fn for_pool(reads: &ReadPool, per_worker: usize) -> Option<Arc<Reads>> {
        let manager: &Manager = &reads.manager;
        let super::DbUrl::Postgres(url) = &manager.url else {
            return None;
        };
        let url = plain_text_url(url, std::env::var_os("PGSSLMODE").is_some())?;
        static SERVERS: AtomicU64 = AtomicU64::new(0);
        Some(Arc::new(Reads {
            id: SERVERS.fetch_add(1, Ordering::Relaxed),
            url,
            setup: manager.pg_session_settings(),
            per_worker: per_worker.clamp(1, CONNECTIONS_PER_WORKER),
            deadline: manager.statement_timeout(),
            failed_until: AtomicU64::new(0),
            started: Instant::now(),
            losses: AtomicU64::new(0),
        }))
    }

    /// Runs the read `f` on a connection of this worker: the one with the
    /// fewest reads in flight, or a new one while every one has some and
    /// the worker holds fewer than it may. `None`, without running it, when
    /// no connection can be made (or, for a moment at the start, while the
    /// worker's connections are all being made: the caller reads through
    /// the blocking pool then).
    ///
    /// Reads share a connection: each sends its statement at once, behind
    /// the others' (pipelining), and PostgreSQL answers them in turn. A
    /// backend with several statements queued runs them back to back
    /// instead of sleeping between them, and the worker sends and reads
    /// several at a time. A connection whose read failed in a way that may
    /// have lost it ([`MayBeLost`]) is not used again (whether it still
    /// answers is not worth a round trip to learn; a new one costs a few
    /// milliseconds, once). A read dropped halfway (the client went away)
    /// leaves its connection usable: tokio-postgres reads and drops the
    /// rest of its answer.
    ///
    /// A read has the statement timeout to be answered in, counted from
    /// when it is sent, not from when the server starts on it: behind a
    /// lock, each statement on a connection waits out its own timeout in
    /// turn, and the eighth read queued would wait eight. Past it the read
    /// fails with [`Unanswered`], which may have lost the connection (it is
    /// stuck): the connection goes, and once its reads are gone, closing it
    /// ends the statements still queued on the server.
    pub async fn read<T, E: MayBeLost + From<Unanswered>>(
        &self,
        f: impl AsyncFnOnce(&mut &AsyncPgConnection) -> Result<T, E>,
    ) -> Option<Result<T, E>> {
        if self.millis() < self.failed_until.load(Ordering::Relaxed) {
            return None;
        }
        let worker = self.worker();
        let conn = match self.pick(&worker) {
            Pick::Shared(conn) => conn,
            Pick::Make => {
                let made = {
                    let _making = Making::count(&worker);
                    self.connect().await
                };
                let conn = Rc::new(made?);
                worker.conns.borrow_mut().push(Rc::clone(&conn));
                conn
            }
            Pick::None => return None,
        };
        let result = Unanswered::within(self.deadline, f(&mut &conn.conn)).await;
        if result.as_ref().is_err_and(MayBeLost::may_be_lost) {
            // Once per loss, not once per connection it took.
            let _ = self.losses.compare_exchange(
                conn.made_after,
                conn.made_after + 1,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
            worker.conns.borrow_mut().retain(|c| !Rc::ptr_eq(c, &conn));
        }
        Some(result)
    }

    /// Which connection of `worker` a read takes; connections made before
    /// the last loss are let go (closed once their reads are done).
    fn pick(&self, worker: &Worker) -> Pick {
        let losses = self.losses.load(Ordering::Relaxed);
        let mut conns = worker.conns.borrow_mut();
        conns.retain(|conn| conn.made_after == losses);
        // Each read in flight holds a count of its connection.
        let least = conns.iter().min_by_key(|conn| Rc::strong_count(conn));
        let room = conns.len() + worker.making.get() < self.per_worker;
        match least {
            Some(conn) if Rc::strong_count(conn) == 1 || !room => Pick::Shared(Rc::clone(conn)),
            _ if room => Pick::Make,
            _ => Pick::None,
        }
    }

    /// A new connection; `None` when it cannot be made, and then for
    /// [`RETRY_AFTER`] reads go to the blocking pool.
    async fn connect(&self) -> Option<Conn> {
        let made_after = self.losses.load(Ordering::Relaxed);
        let made = async {
            let mut conn = AsyncPgConnection::establish(&self.url).await?;
            conn.batch_execute(&self.setup).await?;
            Ok::<_, Box<dyn std::error::Error>>(conn)
        };
        match made.await {
            Ok(conn) => Some(Conn { conn, made_after }),
            Err(error) => {
                let until = self.millis() + RETRY_AFTER.as_millis() as u64;
                self.failed_until.store(until, Ordering::Relaxed);
                tracing::warn!(
                    %error,
                    "cannot open an asynchronous PostgreSQL connection; \
                     reads go through the blocking pool for {} s",
                    RETRY_AFTER.as_secs()
                );
                None
            }
        }
    }

    fn millis(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// This thread's connections to the database.
    fn worker(&self) -> Rc<Worker> {
        WORKERS.with(|workers| {
            Rc::clone(workers.borrow_mut().entry(self.id).or_insert_with(|| {
                Rc::new(Worker {
                    conns: RefCell::new(Vec::new()),
                    making: Cell::new(0),
                })
            }))
        })
    }
}

/// Counts a connection being made for as long as it lives (a read
/// dropped while its connection is being made drops it too).
struct Making<'a>(&'a Worker);

impl<'a> Making<'a> {
    fn count(worker: &'a Worker) -> Making<'a> {
        worker.making.set(worker.making.get() + 1);
        Making(worker)
    }
}

impl Drop for Making<'_> {
    fn drop(&mut self) {
        self.0.making.set(self.0.making.get() - 1);
    }
}

/// What [`Reads::pick`] chose.
enum Pick {
    Shared(Rc<Conn>),
    Make,
    /// The worker's connections are all being made.
    None,
}

/// `url` as the workers' connections use it, when libpq would not use TLS
/// for it either (`sslmode_from_env`: `PGSSLMODE` is set); `None` otherwise.
fn plain_text_url(url: &str, sslmode_from_env: bool) -> Option<String> {
    let url = loopback::without_tls_on_loopback(url, sslmode_from_env);
    loopback::says_no_tls(&url).then(|| url.into_owned())
}

#[cfg(test)]
mod tests {
    use super::plain_text_url;

    /// tokio-postgres speaks no TLS here: a server libpq would reach over
    /// TLS is never read from in plain text.
    #[test]
    fn only_a_server_libpq_reaches_without_tls_is_read_asynchronously() {
        for (url, from_env, expected) in [
            (
                "postgres://u@127.0.0.1:5432/db",
                false,
                Some("postgres://u@127.0.0.1:5432/db?sslmode=disable"),
            ),
            (
                "postgres://u@db.internal/db?sslmode=disable",
                false,
                Some("postgres://u@db.internal/db?sslmode=disable"),
            ),
            ("postgres://u@db.internal/db", false, None),
            ("postgres://u@db.internal/db?sslmode=require", false, None),
            ("postgres://u@127.0.0.1/db?sslmode=require", false, None),
            ("postgres://u@127.0.0.1/db?sslmode=prefer", false, None),
            // PGSSLMODE may ask for TLS even on loopback.
            ("postgres://u@127.0.0.1/db", true, None),
            ("postgres://u@/db?host=/var/run/postgresql", false, None),
        ] {
            assert_eq!(plain_text_url(url, from_env).as_deref(), expected, "{url}");
        }
    }
}
