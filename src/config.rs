//! Configuration: command-line flags, each with an environment fallback.

use clap::{Args, ValueEnum};

/// Settings every command shares.
#[derive(Debug, Clone, Args)]
pub struct GlobalConfig {
    /// The database: a SQLite file (`sqlite://path` or a bare path) or a
    /// `postgres://` URL.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://bulk-invite.db",
        global = true
    )]
    pub database_url: String,

    /// Log format: human-readable text or one JSON object per line.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One readable line per event.
    Text,
    /// One JSON object per event.
    Json,
}

/// Settings of the HTTP API (`bulk-invite serve`).
#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// Where the API listens.
    #[arg(long, env = "BIND_ADDR", default_value = "127.0.0.1:8080")]
    pub bind_addr: String,

    /// The largest accepted upload, in bytes; a larger one is refused with 413.
    #[arg(long, env = "MAX_UPLOAD_BYTES", default_value_t = 32 * 1024 * 1024)]
    pub max_upload_bytes: u64,

    /// The default account's API key, used only when the database has no
    /// account yet; when unset a random key is made and printed once.
    #[arg(long, env = "BULK_INVITE_BOOTSTRAP_API_KEY", hide_env_values = true)]
    pub bootstrap_api_key: Option<String>,

    /// Worker threads of the HTTP server (default: one per core).
    #[arg(long, env = "HTTP_WORKERS")]
    pub http_workers: Option<usize>,
}

impl ServeConfig {
    /// Settings for a server on `bind_addr` with every other value at its default.
    pub fn with_bind_addr(bind_addr: impl Into<String>) -> ServeConfig {
        ServeConfig {
            bind_addr: bind_addr.into(),
            max_upload_bytes: 32 * 1024 * 1024,
            bootstrap_api_key: None,
            http_workers: None,
        }
    }
}
