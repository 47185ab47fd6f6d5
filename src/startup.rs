//! Builds the HTTP server: the routes, shared state and middleware.

use crate::api;
use crate::config::ServeConfig;
use crate::db::Pool;
use crate::dispatch::{DispatchStatus, Dispatcher};
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
use std::net::{SocketAddr, TcpListener};

/// State every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The database pool.
    pub pool: Pool,
    /// The largest accepted upload, in bytes.
    pub max_upload_bytes: u64,
    /// The in-process dispatcher's state, when this process runs one.
    pub dispatch: Option<Arc<DispatchStatus>>,
}

/// A bound, not yet running server.
pub struct Application {
    address: SocketAddr,
    server: Server,
    dispatcher: Option<(watch::Sender<bool>, JoinHandle<()>)>,
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
            pool,
            max_upload_bytes: config.max_upload_bytes,
            dispatch: dispatcher.as_ref().map(Dispatcher::status),
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
        let dispatcher = dispatcher.map(|dispatcher| {
            let (stop, stopped) = watch::channel(false);
            (stop, tokio::spawn(dispatcher.run(stopped)))
        });
        Ok(Application {
            address,
            server: server.run(),
            dispatcher,
        })
    }

    /// The address the server listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Serves until the process is asked to stop (SIGINT or SIGTERM), then
    /// lets the dispatcher finish its batch.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let served = self.server.await;
        if let Some((stop, task)) = self.dispatcher {
            let _ = stop.send(true);
            task.await?;
        }
        Ok(served?)
    }
}
