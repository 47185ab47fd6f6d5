//! Builds the HTTP server: the routes, shared state and middleware.

use crate::api;
use crate::config::{ServeConfig, WebhookConfig};
use crate::db::Pool;
use crate::dispatch::{DispatchStatus, Dispatcher};
use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// State every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The database pool.
    pub pool: Pool,
    /// The largest accepted upload, in bytes.
    pub max_upload_bytes: u64,
    /// The in-process dispatcher's state, when this process runs one.
    pub dispatch: Option<Arc<DispatchStatus>>,
    /// How delivery-event webhooks are verified.
    pub webhooks: WebhookConfig,
    /// Origins an import's `redirect_url` may point to.
    pub allowed_redirect_origins: Vec<String>,
}

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
        let listener = TcpListener::bind(&config.bind_addr)?;
        let address = listener.local_addr()?;
        let dispatcher = match config.dispatcher {
            true => Some(Dispatcher::new(pool.clone(), &config.dispatch)?),
            false => None,
        };
        let state = web::Data::new(AppState {
            pool: pool.clone(),
            max_upload_bytes: config.max_upload_bytes,
            dispatch: dispatcher.as_ref().map(Dispatcher::status),
            webhooks: config.webhooks.clone(),
            allowed_redirect_origins: config.allowed_redirect_origins.clone(),
        });
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(tracing_actix_web::TracingLogger::default())
                .app_data(state.clone())
                .configure(api::configure)
        })
        .listen(listener)?;
        if let Some(workers) = config.http_workers {
            server = server.workers(workers);
        }
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(checkpoint_until_stopped(pool.clone(), stopped.clone()));
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
