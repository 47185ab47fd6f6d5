//! Builds the HTTP server: the routes, shared state and middleware.

use crate::api;
use crate::config::{ServeConfig, WebhookConfig};
use crate::db::Pool;
use crate::dispatch::{DispatchStatus, Dispatcher};
use actix_web::dev::Server;
use actix_web::{middleware, web, App, HttpServer};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// State every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The database pool.
    pub pool: Pool,
    /// The pool of `api::read` (on PostgreSQL its own, see
    /// [`crate::db::connect_reads`]; else the main pool).
    pub read_pool: Pool,
    /// Reads that may use the pool at once (four per core, at most the
    /// pool's size), handed out first come, first served.
    pub read_turns: Arc<tokio::sync::Semaphore>,
    /// The largest accepted upload, in bytes.
    pub max_upload_bytes: u64,
    /// The in-process dispatcher's state, when this process runs one.
    pub dispatch: Option<Arc<DispatchStatus>>,
    /// How delivery-event webhooks are verified.
    pub webhooks: WebhookConfig,
    /// Origins an import's `redirect_url` may point to.
    pub allowed_redirect_origins: Vec<String>,
    /// The invitee's pages (the accept page and its answers).
    pub pages: Arc<api::pages::Pages>,
    /// The largest webhook body, in bytes.
    pub webhook_max_bytes: usize,
    /// Bytes all webhook bodies being read may hold at once (they are
    /// unauthenticated until read and verified).
    pub webhook_budget: Arc<tokio::sync::Semaphore>,
    /// API keys found recently.
    pub keys: Arc<api::auth::KeyCache>,
    /// Requests per minute per key (`None`: not limited).
    pub rate_limiter: Option<Arc<api::quota::RateLimiter>>,
    /// Uploads in flight per account.
    pub import_slots: Arc<api::quota::ImportSlots>,
    /// `/metrics`' last figures, asked one scrape at a time.
    pub metrics: Arc<api::metrics::Latest>,
    /// `/readyz`'s last check, made one probe at a time.
    pub readiness: Arc<api::one_at_a_time::OneAtATime<Result<(), String>>>,
    /// What one account and one key may do.
    pub limits: crate::config::LimitsConfig,
    /// `REPORT_RETENTION_DAYS` (0: kept), as `GET /account` shows it.
    pub report_retention_days: u32,
    /// PostgreSQL: how long a read through `read_pool` may take, its wait
    /// for a turn included: the statement timeout (`None`: no limit; and
    /// on SQLite, whose readers never wait for a lock).
    pub read_deadline: Option<Duration>,
    /// Whether short reads may run on the HTTP workers (SQLite: see
    /// [`api::read`]).
    pub inline_reads: bool,
    /// PostgreSQL: the keyset reads' connections of each HTTP worker
    /// ([`crate::db::async_pg`]; `None`: they go through `read_pool`).
    pub async_reads: Option<Arc<crate::db::async_pg::Reads>>,
    /// This server's OpenAPI document, as served at `/openapi.json`.
    pub openapi_json: actix_web::web::Bytes,
}

/// How many largest webhook bodies may be read at once.
pub const WEBHOOK_BODIES_AT_ONCE: usize = 16;

/// A bound, not yet running server.
pub struct Application {
    address: SocketAddr,
    server: Server,
    stop: Arc<watch::Sender<bool>>,
    dispatcher: Option<JoinHandle<()>>,
}

/// Stops a running [`Application`] from outside (tests, embedding).
#[derive(Clone)]
pub struct StopHandle {
    server: actix_web::dev::ServerHandle,
    stop: Arc<watch::Sender<bool>>,
}

impl StopHandle {
    /// Asks the server to stop accepting requests and the dispatcher to
    /// stop after its current batch; returns at once.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
        // The stop command is sent when `stop` is called; awaiting the
        // returned future would only wait for it to finish.
        drop(self.server.stop(true));
    }
}

impl Application {
    /// Binds the listener and builds the server (port 0 picks a free port).
    pub async fn build(config: ServeConfig, pool: Pool) -> anyhow::Result<Application> {
        Application::build_with_reads(config, pool, None).await
    }

    /// Like [`Application::build`], with a pool of its own for the API's
    /// keyset reads ([`crate::db::connect_reads`]; `None`: the main pool).
    pub async fn build_with_reads(
        config: ServeConfig,
        pool: Pool,
        reads: Option<crate::db::ReadPool>,
    ) -> anyhow::Result<Application> {
        let listener = TcpListener::bind(&config.bind_addr)?;
        let address = listener.local_addr()?;
        let dispatcher = match config.dispatcher {
            true => Some(Dispatcher::new(pool.clone(), &config.dispatch)?),
            false => None,
        };
        let pages = Arc::new(api::pages::Pages::load(
            config.accept_template_dir.as_deref(),
        )?);
        let workers = config.http_workers.unwrap_or_else(default_workers).max(1);
        // The read turns, shared out between the workers.
        let per_worker = read_turns(&pool).div_ceil(workers);
        let async_reads = reads
            .as_ref()
            .and_then(|reads| crate::db::async_pg::Reads::for_pool(reads, per_worker));
        let read_deadline = reads
            .as_ref()
            .and_then(crate::db::ReadPool::statement_timeout);
        let read_pool = reads.map_or_else(|| pool.clone(), |reads| reads.pool);
        let state = web::Data::new(AppState {
            async_reads,
            pages,
            pool: pool.clone(),
            read_pool: read_pool.clone(),
            max_upload_bytes: config.max_upload_bytes,
            dispatch: dispatcher.as_ref().map(Dispatcher::status),
            webhooks: config.webhooks.clone(),
            allowed_redirect_origins: config.allowed_redirect_origins.clone(),
            webhook_max_bytes: config.webhook_max_bytes,
            webhook_budget: Arc::new(tokio::sync::Semaphore::new(
                config
                    .webhook_max_bytes
                    .saturating_mul(WEBHOOK_BODIES_AT_ONCE)
                    .min(tokio::sync::Semaphore::MAX_PERMITS),
            )),
            keys: Arc::default(),
            rate_limiter: (config.limits.rate_limit_per_minute > 0).then(|| {
                Arc::new(api::quota::RateLimiter::new(
                    config.limits.rate_limit_per_minute,
                ))
            }),
            metrics: Arc::default(),
            readiness: Arc::default(),
            import_slots: Arc::new(api::quota::ImportSlots::new(
                config.limits.max_concurrent_imports_per_account,
            )),
            limits: config.limits.clone(),
            report_retention_days: config.retention.report_retention_days,
            read_turns: Arc::new(tokio::sync::Semaphore::new(read_turns(&pool))),
            read_deadline,
            inline_reads: matches!(*pool.get()?, crate::db::DbConnection::Sqlite(_)),
            openapi_json: api::openapi::document(&config.allowed_redirect_origins)
                .to_pretty_json()?
                .into(),
        });
        let max_connections = connection_cap(config.max_connections);
        let edge = api::limits::EdgeLimits {
            body_timeout: Duration::from_secs(config.request_body_timeout_secs),
            bodies: Arc::new(tokio::sync::Semaphore::new((max_connections / 2).max(1))),
        };
        let cors_origins = config.cors_allowed_origins.clone();
        let server = HttpServer::new(move || {
            App::new()
                .wrap(middleware::from_fn(api::quota::rate_limit_fields))
                .wrap(middleware::from_fn({
                    let edge = edge.clone();
                    move |req, next| api::limits::guard(edge.clone(), req, next)
                }))
                .wrap(tracing_actix_web::TracingLogger::<api::logging::MaskedTokens>::new())
                // Outermost: a preflight is answered before any other rule,
                // and refusals carry the CORS headers a browser needs to
                // show them to the page.
                .wrap(middleware::Condition::new(
                    !cors_origins.is_empty(),
                    api::cors::policy(&cors_origins),
                ))
                .app_data(state.clone())
                .configure(api::configure)
        })
        .workers(workers)
        .max_connections(max_connections.div_ceil(workers))
        .client_request_timeout(Duration::from_secs(config.request_header_timeout_secs))
        .listen(listener)?;
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(checkpoint_until_stopped(pool.clone(), stopped.clone()));
        tokio::spawn(crate::retention::sweep_until_stopped(
            pool.clone(),
            config.retention,
            stopped.clone(),
        ));
        let dispatcher = dispatcher.map(|dispatcher| tokio::spawn(dispatcher.run(stopped)));
        Ok(Application {
            address,
            server: server.run(),
            stop: Arc::new(stop),
            dispatcher,
        })
    }

    /// The address the server listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// A handle that stops this application.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle {
            server: self.server.handle(),
            stop: self.stop.clone(),
        }
    }

    /// Serves until the process is asked to stop (SIGINT or SIGTERM), then
    /// lets the dispatcher finish its batch.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let served = self.server.await;
        let _ = self.stop.send(true);
        if let Some(task) = self.dispatcher {
            task.await?;
        }
        Ok(served?)
    }
}

/// Reads that may use the pool at once: four per core, at most the main
/// pool's size (also the size of a pool of their own).
pub fn read_turns(pool: &Pool) -> usize {
    (pool.max_size() as usize).min(4 * default_workers())
}

/// actix's default: one HTTP worker per core.
fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// `wanted` open connections, or fewer when the process may not open that
/// many files (each connection is one, and the database and logs need
/// some): a server at its file limit stops accepting anyone, health
/// checks included.
fn connection_cap(wanted: usize) -> usize {
    const RESERVED_FILES: u64 = 256;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own and pass by pointer.
    let known = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    if !known || limit.rlim_cur == libc::RLIM_INFINITY {
        return wanted.max(1);
    }
    let room = limit.rlim_cur.saturating_sub(RESERVED_FILES).max(64);
    if (wanted as u64) > room {
        tracing::warn!(
            wanted,
            open_file_limit = limit.rlim_cur,
            "MAX_CONNECTIONS is above what the open-file limit allows; using {room}"
        );
        return room as usize;
    }
    wanted.max(1)
}

/// Checkpoints SQLite's write-ahead log every second until stopped.
pub async fn checkpoint_until_stopped(pool: Pool, mut stopped: watch::Receiver<bool>) {
    if !matches!(
        pool.get().as_deref(),
        Ok(crate::db::DbConnection::Sqlite(_))
    ) {
        return;
    }
    while !*stopped.borrow() {
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            _ = stopped.changed() => {}
        }
        let pool = pool.clone();
        match tokio::task::spawn_blocking(move || crate::db::checkpoint(&pool)).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "checkpoint failed"),
            Err(error) => tracing::warn!(%error, "checkpoint task failed"),
        }
    }
}
