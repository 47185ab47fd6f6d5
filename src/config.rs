//! Configuration: command-line flags, each with an environment fallback.

use crate::db::DbUrl;
use crate::dispatch::providers::{ProviderConfig, ProviderKind};
use clap::{Args, ValueEnum};

/// Refuses a `DATABASE_URL` that names no file: SQLite would give each
/// pooled connection a private database of its own (empty, or in memory),
/// so the server would start, make an account nobody can see, and answer
/// 500 to everything. An empty value is what a compose file's
/// `${DATABASE_URL}` gives when the variable is not set.
fn database_url(url: &str) -> Result<String, String> {
    match DbUrl::parse(url) {
        DbUrl::Sqlite(path) if path.trim().is_empty() => Err(
            "names no database: give a SQLite file (sqlite://bulk-invite.db) or a postgres:// URL"
                .to_owned(),
        ),
        DbUrl::Sqlite(path) if path.contains(":memory:") || path.contains("mode=memory") => Err(
            "names an in-memory SQLite database, which each connection would see empty: give a file"
                .to_owned(),
        ),
        _ => Ok(url.to_owned()),
    }
}

/// Settings every command shares.
#[derive(Debug, Clone, Args)]
pub struct GlobalConfig {
    /// The database: a SQLite file (`sqlite://path` or a bare path) or a
    /// `postgres://` URL. A PostgreSQL URL whose hosts are all loopback
    /// addresses connects without TLS unless it names an `sslmode` (or
    /// `PGSSLMODE` is set).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://bulk-invite.db",
        value_parser = database_url,
        global = true
    )]
    pub database_url: String,

    /// Database connections per process at most (default: 16 on
    /// PostgreSQL, 8 on SQLite). Mind PostgreSQL's `max_connections` when
    /// running many processes.
    #[arg(long, env = "DATABASE_POOL_SIZE", global = true)]
    pub database_pool_size: Option<u32>,

    /// Seconds one database statement may run before it is cancelled
    /// (PostgreSQL `statement_timeout`; on SQLite, how long a writer waits
    /// for the lock). An API request past it answers 503 with `Retry-After`.
    /// 0: no limit.
    #[arg(
        long,
        env = "DATABASE_STATEMENT_TIMEOUT_SECS",
        default_value_t = 30,
        global = true
    )]
    pub database_statement_timeout_secs: u64,

    /// Seconds a request waits for a free database connection before it
    /// answers 503 with `Retry-After`.
    #[arg(
        long,
        env = "DATABASE_POOL_TIMEOUT_SECS",
        default_value_t = 10,
        global = true
    )]
    pub database_pool_timeout_secs: u64,

    /// SQLite: the write-ahead log size, in MiB, past which the background
    /// checkpoint empties it, so the log stays near this size however busy
    /// the database is.
    #[arg(long, env = "SQLITE_WAL_LIMIT_MB", default_value_t = 64, global = true)]
    pub sqlite_wal_limit_mb: u64,

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

    /// Seconds a client has to send a request body. A body still arriving
    /// then is cut with 408, unless it keeps coming at 64 KiB/s or more
    /// (each 64 KiB received earns another second).
    #[arg(long, env = "REQUEST_BODY_TIMEOUT_SECS", default_value_t = 30)]
    pub request_body_timeout_secs: u64,

    /// Seconds a client has to send a request's headers (first request on a
    /// connection) before the connection is answered 408 and closed.
    #[arg(long, env = "REQUEST_HEADER_TIMEOUT_SECS", default_value_t = 5)]
    pub request_header_timeout_secs: u64,

    /// Open connections at most, over all HTTP workers; further clients
    /// wait in the listen backlog. Kept below the process's open-file limit.
    /// At most half of them may be sending a request body at once (503
    /// past it), so slow bodies never take the room health checks need.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,

    /// The largest delivery-event webhook body, in bytes (413 past it).
    #[arg(long, env = "WEBHOOK_MAX_BYTES", default_value_t = 1024 * 1024)]
    pub webhook_max_bytes: usize,

    /// The default account's API key, used only when the database has no
    /// account yet; when unset a random key is made and printed once.
    #[arg(long, env = "BULK_INVITE_BOOTSTRAP_API_KEY", hide_env_values = true)]
    pub bootstrap_api_key: Option<String>,

    /// The display name of the account `serve` creates on an empty database
    /// (invitation emails show it: "… invited you to join <name>").
    /// Default: `PRODUCT_NAME`, else "Bulk Invite". Change it later with
    /// `bulk-invite accounts rename` or `PATCH /account`.
    #[arg(long, env = "BULK_INVITE_ACCOUNT_NAME")]
    pub account_name: Option<String>,

    /// Worker threads of the HTTP server (default: one per core).
    #[arg(long, env = "HTTP_WORKERS")]
    pub http_workers: Option<usize>,

    /// Origins an import's `redirect_url` may point to, comma-separated
    /// (e.g. `https://app.example.com`); none allowed when empty.
    #[arg(long, env = "ALLOWED_REDIRECT_ORIGINS", value_delimiter = ',')]
    pub allowed_redirect_origins: Vec<String>,

    /// Origins whose pages may call the API from a browser (CORS),
    /// comma-separated (e.g. `https://app.example.com`); none when empty.
    #[arg(long, env = "CORS_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub cors_allowed_origins: Vec<String>,

    /// A folder whose files replace the invitee's built-in pages:
    /// `style.css`, and `<lang>/layout.html`, `invitation.html`,
    /// `accepted.html`, `refused.html` (minijinja, autoescaped); a new
    /// `<lang>/` folder adds a language, chosen by `Accept-Language`.
    #[arg(long, env = "ACCEPT_TEMPLATE_DIR")]
    pub accept_template_dir: Option<std::path::PathBuf>,

    /// Run the dispatcher inside this process (`false` when separate
    /// `bulk-invite worker` processes send the invitations).
    #[arg(long, env = "SERVE_DISPATCHER", default_value_t = true, action = clap::ArgAction::Set)]
    pub dispatcher: bool,

    #[command(flatten)]
    pub limits: LimitsConfig,

    #[command(flatten)]
    pub dispatch: DispatchConfig,

    #[command(flatten)]
    pub webhooks: WebhookConfig,

    #[command(flatten)]
    pub retention: RetentionConfig,
}

/// How long imports keep their reports and their invitees' addresses.
#[derive(Debug, Clone, Copy, Args)]
pub struct RetentionConfig {
    /// Days an import keeps its report and its invitees' addresses; older
    /// imports are erased by a background sweep of `serve` (their counts
    /// and history row stay, open invitations are revoked). 0: kept forever.
    #[arg(long, env = "REPORT_RETENTION_DAYS", default_value_t = 0)]
    pub report_retention_days: u32,

    /// Seconds between two retention sweeps (the first runs at start).
    #[arg(long, env = "REPORT_RETENTION_SWEEP_SECS", default_value_t = 3600)]
    pub report_retention_sweep_secs: u64,
}

impl Default for RetentionConfig {
    fn default() -> RetentionConfig {
        RetentionConfig {
            report_retention_days: 0,
            report_retention_sweep_secs: 3600,
        }
    }
}

/// What one account and one key may do (`serve`). With several API
/// processes, the request rate and the uploads in flight are counted per
/// process; the invitation budget is kept in the database, so it holds
/// across them.
#[derive(Debug, Clone, Args)]
pub struct LimitsConfig {
    /// Invitations an account may queue (imports and re-sends) in any 24
    /// hours; an account's own value (`bulk-invite accounts budget`) wins.
    /// 0: unlimited.
    #[arg(long, env = "ACCOUNT_DAILY_INVITATIONS", default_value_t = 0, value_parser = clap::value_parser!(i64).range(0..))]
    pub account_daily_invitations: i64,

    /// Requests per minute per API key (a token bucket: a full minute's
    /// worth may come at once, then it refills evenly); 0 turns it off.
    #[arg(long, env = "RATE_LIMIT_PER_MINUTE", default_value_t = 1200)]
    pub rate_limit_per_minute: u32,

    /// Uploads (imports and previews) of one account being received or
    /// classified at once; further ones are refused with 429. 0: no limit.
    #[arg(long, env = "MAX_CONCURRENT_IMPORTS_PER_ACCOUNT", default_value_t = 2)]
    pub max_concurrent_imports_per_account: u32,
}

impl Default for LimitsConfig {
    fn default() -> LimitsConfig {
        LimitsConfig {
            account_daily_invitations: 0,
            rate_limit_per_minute: 1200,
            max_concurrent_imports_per_account: 2,
        }
    }
}

impl ServeConfig {
    /// Settings for a server on `bind_addr` with every other value at its default.
    pub fn with_bind_addr(bind_addr: impl Into<String>) -> ServeConfig {
        ServeConfig {
            bind_addr: bind_addr.into(),
            max_upload_bytes: 32 * 1024 * 1024,
            request_body_timeout_secs: 30,
            request_header_timeout_secs: 5,
            max_connections: 10_000,
            webhook_max_bytes: 1024 * 1024,
            bootstrap_api_key: None,
            account_name: None,
            http_workers: None,
            allowed_redirect_origins: Vec::new(),
            cors_allowed_origins: Vec::new(),
            accept_template_dir: None,
            dispatcher: true,
            limits: LimitsConfig::default(),
            dispatch: DispatchConfig::default(),
            webhooks: WebhookConfig::default(),
            retention: RetentionConfig::default(),
        }
    }
}

/// Settings of invitation dispatch (`bulk-invite worker`, and `serve`
/// unless its dispatcher is turned off).
#[derive(Debug, Clone, Args)]
pub struct DispatchConfig {
    /// Which provider sends the invitation emails.
    #[arg(long, env = "EMAIL_PROVIDER", value_enum, default_value_t = ProviderKind::Log)]
    pub email_provider: ProviderKind,

    /// The sender address of invitation emails.
    #[arg(long, env = "EMAIL_FROM", default_value = "invites@localhost")]
    pub email_from: String,

    /// The base of the accept link in emails (`<base>/accept/<token>`).
    #[arg(long, env = "PUBLIC_BASE_URL", default_value = "http://127.0.0.1:8080")]
    pub public_base_url: String,

    /// The frontend's own accept page, when it has one: emails link there
    /// instead of to the built-in page, `{token}` replaced by the token
    /// (e.g. `https://app.example.com/join?token={token}`); the frontend
    /// then calls `GET` and `POST /accept/{token}` itself.
    #[arg(long, env = "ACCEPT_URL_TEMPLATE")]
    pub accept_url_template: Option<String>,

    /// Postmark's API base URL.
    #[arg(long, env = "POSTMARK_BASE_URL")]
    pub postmark_base_url: Option<String>,
    /// Postmark's server token.
    #[arg(long, env = "POSTMARK_SERVER_TOKEN", hide_env_values = true)]
    pub postmark_server_token: Option<String>,
    /// Postmark's message stream for invitations.
    #[arg(long, env = "POSTMARK_MESSAGE_STREAM", default_value = "outbound")]
    pub postmark_message_stream: String,
    /// Resend's API base URL.
    #[arg(long, env = "RESEND_BASE_URL")]
    pub resend_base_url: Option<String>,
    /// Resend's API key.
    #[arg(long, env = "RESEND_API_KEY", hide_env_values = true)]
    pub resend_api_key: Option<String>,
    /// SendGrid's API base URL.
    #[arg(long, env = "SENDGRID_BASE_URL")]
    pub sendgrid_base_url: Option<String>,
    /// SendGrid's API key.
    #[arg(long, env = "SENDGRID_API_KEY", hide_env_values = true)]
    pub sendgrid_api_key: Option<String>,
    /// Mailpit's base URL (local development).
    #[arg(long, env = "MAILPIT_BASE_URL")]
    pub mailpit_base_url: Option<String>,
    /// Mailpit's basic-auth credentials as `user:password`, if it asks for them.
    #[arg(long, env = "MAILPIT_AUTH", hide_env_values = true)]
    pub mailpit_auth: Option<String>,

    /// Seconds before a request to the provider times out.
    #[arg(long, env = "EMAIL_TIMEOUT_SECS", default_value_t = 15)]
    pub email_timeout_secs: u64,
    /// Messages per second at most (0: no limit in messages; requests are
    /// still paced by `EMAIL_REQUEST_RATE_LIMIT`).
    #[arg(long, env = "EMAIL_RATE_LIMIT", default_value_t = 0.0)]
    pub email_rate_limit: f64,
    /// Requests to the provider per second at most (0: the provider's
    /// documented default, e.g. 2 for Resend).
    #[arg(long, env = "EMAIL_REQUEST_RATE_LIMIT", default_value_t = 0.0)]
    pub email_request_rate_limit: f64,
    /// Attempts per invitation before it is `failed`.
    #[arg(long, env = "DISPATCH_MAX_ATTEMPTS", default_value_t = 8)]
    pub max_attempts: i32,
    /// Invitations per batch (0: the provider's largest batch).
    #[arg(long, env = "DISPATCH_BATCH_SIZE", default_value_t = 0)]
    pub batch_size: usize,
    /// Seconds a claimed batch stays leased; after that another worker may
    /// send what was not recorded.
    #[arg(long, env = "DISPATCH_LEASE_SECS", default_value_t = 120)]
    pub lease_secs: u64,
    /// Milliseconds to wait when the queue is empty.
    #[arg(long, env = "DISPATCH_POLL_MS", default_value_t = 500)]
    pub poll_ms: u64,
    /// Seconds to pause when the provider refused our credentials or sender,
    /// or limited us without saying for how long, before trying again.
    #[arg(long, env = "DISPATCH_PAUSE_SECS", default_value_t = 60)]
    pub pause_secs: u64,
    /// The longest wait, in seconds, before a retry or after a pause,
    /// whatever the provider's `Retry-After` or reset header says.
    #[arg(long, env = "DISPATCH_MAX_BACKOFF_SECS", default_value_t = 900)]
    pub max_backoff_secs: u64,
    /// First retry delay in milliseconds; it doubles per attempt (with jitter).
    #[arg(long, env = "DISPATCH_BACKOFF_MS", default_value_t = 2_000)]
    pub backoff_ms: u64,

    /// Seconds between sweeps that mark invitations past their expiry `expired`.
    #[arg(long, env = "DISPATCH_EXPIRY_SWEEP_SECS", default_value_t = 60)]
    pub expiry_sweep_secs: u64,

    /// Days an invitation stays valid after it is sent (an import may ask for 1 to 30).
    #[arg(long, env = "INVITATION_TTL_DAYS", default_value_t = 7)]
    pub invitation_ttl_days: i64,
    /// A folder of email templates laid over the built-in ones: a folder
    /// per locale (`de/`, `fr-CA/`) with `subject.txt`, `body.txt` and
    /// `body.html` (a new language needs all three), and loose files there
    /// for English.
    #[arg(long, env = "EMAIL_TEMPLATE_DIR")]
    pub email_template_dir: Option<std::path::PathBuf>,
    /// The product's name, shown in invitation emails ("Ann Lee invited you
    /// to join Acme on <PRODUCT_NAME>"); unset: not named.
    #[arg(long, env = "PRODUCT_NAME")]
    pub product_name: Option<String>,
    /// The secret accept tokens are derived from. Give every process the
    /// same one, so a batch retried by another worker carries the same link
    /// (unset: a random secret per process).
    #[arg(long, env = "BULK_INVITE_TOKEN_SECRET", hide_env_values = true)]
    pub token_secret: Option<String>,
}

impl Default for DispatchConfig {
    fn default() -> DispatchConfig {
        DispatchConfig {
            email_provider: ProviderKind::Log,
            email_from: "invites@localhost".into(),
            public_base_url: "http://127.0.0.1:8080".into(),
            accept_url_template: None,
            postmark_base_url: None,
            postmark_server_token: None,
            postmark_message_stream: "outbound".into(),
            resend_base_url: None,
            resend_api_key: None,
            sendgrid_base_url: None,
            sendgrid_api_key: None,
            mailpit_base_url: None,
            mailpit_auth: None,
            email_timeout_secs: 15,
            email_rate_limit: 0.0,
            email_request_rate_limit: 0.0,
            max_attempts: 8,
            batch_size: 0,
            lease_secs: 120,
            poll_ms: 500,
            pause_secs: 60,
            max_backoff_secs: 900,
            backoff_ms: 2_000,
            expiry_sweep_secs: 60,
            invitation_ttl_days: 7,
            email_template_dir: None,
            product_name: None,
            token_secret: None,
        }
    }
}

impl DispatchConfig {
    /// The chosen provider's settings.
    pub fn provider(&self) -> ProviderConfig {
        let (base_url, api_key) = match self.email_provider {
            ProviderKind::Log => (&None, &None),
            ProviderKind::Postmark => (&self.postmark_base_url, &self.postmark_server_token),
            ProviderKind::Resend => (&self.resend_base_url, &self.resend_api_key),
            ProviderKind::Sendgrid => (&self.sendgrid_base_url, &self.sendgrid_api_key),
            ProviderKind::Mailpit => (&self.mailpit_base_url, &self.mailpit_auth),
        };
        ProviderConfig {
            kind: self.email_provider,
            base_url: base_url.clone(),
            api_key: api_key.clone(),
            timeout: std::time::Duration::from_secs(self.email_timeout_secs),
            postmark_message_stream: self.postmark_message_stream.clone(),
        }
    }
}

/// How delivery-event webhooks are verified. A provider whose setting is
/// unset has its webhook refused (401), never accepted unchecked.
#[derive(Debug, Clone, Default, Args)]
pub struct WebhookConfig {
    /// The user name in the basic-auth credentials of the Postmark webhook URL.
    #[arg(long, env = "POSTMARK_WEBHOOK_USER")]
    pub postmark_webhook_user: Option<String>,
    /// The password in the basic-auth credentials of the Postmark webhook URL.
    #[arg(long, env = "POSTMARK_WEBHOOK_PASSWORD", hide_env_values = true)]
    pub postmark_webhook_password: Option<String>,
    /// Resend's webhook signing secret (`whsec_...`).
    #[arg(long, env = "RESEND_WEBHOOK_SECRET", hide_env_values = true)]
    pub resend_webhook_secret: Option<String>,
    /// SendGrid's signed-event-webhook verification key (base64 public key).
    #[arg(long, env = "SENDGRID_WEBHOOK_PUBLIC_KEY")]
    pub sendgrid_webhook_public_key: Option<String>,
    /// Seconds a signed webhook's timestamp may differ from our clock.
    #[arg(long, env = "WEBHOOK_TOLERANCE_SECS", default_value_t = 300)]
    pub webhook_tolerance_secs: i64,
}
