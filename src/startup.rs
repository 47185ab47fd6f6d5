//! Builds the HTTP server: the routes, shared state and middleware.

use crate::api;
use crate::config::ServeConfig;
use crate::db::Pool;
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
}

/// A bound, not yet running server.
pub struct Application {
    address: SocketAddr,
    server: Server,
}

impl Application {
    /// Binds the listener and builds the server (port 0 picks a free port).
    pub async fn build(config: ServeConfig, pool: Pool) -> anyhow::Result<Application> {
        let listener = TcpListener::bind(&config.bind_addr)?;
        let address = listener.local_addr()?;
        let state = web::Data::new(AppState {
            pool,
            max_upload_bytes: config.max_upload_bytes,
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
        Ok(Application {
            address,
            server: server.run(),
        })
    }

    /// The address the server listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Serves until the process is asked to stop (SIGINT or SIGTERM).
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.server.await?;
        Ok(())
    }
}
