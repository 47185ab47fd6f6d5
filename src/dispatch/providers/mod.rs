//! The email provider adapters, one file each, and [`build`], which turns a
//! [`ProviderConfig`] into the configured [`Provider`].
//!
//! Each adapter owns its provider's wire format; [`http`] holds what they
//! share (the client, reading answers, mapping errors and retry hints).

pub mod hints;
pub mod http;
pub mod log;
pub mod mailpit;
pub mod postmark;
pub mod resend;
pub mod sendgrid;

use std::sync::Arc;
use std::time::Duration;

use crate::dispatch::provider::Provider;

/// Which provider sends the invitations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProviderKind {
    /// Writes each invitation to the log and marks it sent (no account needed).
    Log,
    /// Postmark's batch API.
    Postmark,
    /// Resend's batch API.
    Resend,
    /// SendGrid's v3 mail send API.
    Sendgrid,
    /// A local Mailpit's send API, for development.
    Mailpit,
}

impl ProviderKind {
    /// The name as configured (`EMAIL_PROVIDER`) and as [`Provider::name`] returns it.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Log => "log",
            ProviderKind::Postmark => "postmark",
            ProviderKind::Resend => "resend",
            ProviderKind::Sendgrid => "sendgrid",
            ProviderKind::Mailpit => "mailpit",
        }
    }

    /// The provider's own API address, used when no base URL is configured.
    pub fn default_base_url(self) -> &'static str {
        match self {
            ProviderKind::Log => "",
            ProviderKind::Postmark => "https://api.postmarkapp.com",
            ProviderKind::Resend => "https://api.resend.com",
            ProviderKind::Sendgrid => "https://api.sendgrid.com",
            ProviderKind::Mailpit => "http://127.0.0.1:8025",
        }
    }

    /// The provider's documented limit in requests per second (0: none
    /// documented). Resend: "The default maximum rate limit is 2 requests
    /// per second per team" (Resend, usage limits). Postmark and SendGrid
    /// document no per-second limit for sending; they answer 429 when
    /// they want us to slow down, and dispatch then pauses for as long as
    /// they say.
    pub fn default_request_rate(self) -> f64 {
        match self {
            ProviderKind::Resend => 2.0,
            _ => 0.0,
        }
    }

    /// The environment variable that holds this provider's key (for Mailpit,
    /// its optional basic auth).
    pub fn key_variable(self) -> &'static str {
        match self {
            ProviderKind::Log => "",
            ProviderKind::Postmark => "POSTMARK_SERVER_TOKEN",
            ProviderKind::Resend => "RESEND_API_KEY",
            ProviderKind::Sendgrid => "SENDGRID_API_KEY",
            ProviderKind::Mailpit => "MAILPIT_AUTH",
        }
    }
}

impl std::fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything needed to build an adapter.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// Which provider.
    pub kind: ProviderKind,
    /// Where its API is; `None` (or blank) means the provider's own default.
    pub base_url: Option<String>,
    /// Postmark server token, Resend or SendGrid API key; for Mailpit an
    /// optional `user:password` for basic auth. Ignored by `log`.
    pub api_key: Option<String>,
    /// Bounds connecting and each whole request.
    pub timeout: Duration,
    /// Postmark's message stream (usually `outbound`).
    pub postmark_message_stream: String,
}

/// Why a provider could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The provider needs a key and none was given.
    #[error("the {provider} email provider needs an API key: set {variable}")]
    MissingKey {
        provider: &'static str,
        variable: &'static str,
    },
    /// The base URL is not an absolute http(s) URL.
    #[error("the {provider} base URL {url:?} is not an absolute http(s) URL")]
    InvalidBaseUrl { provider: &'static str, url: String },
    /// Mailpit's key is not `user:password`.
    #[error("MAILPIT_AUTH must be \"user:password\" for basic auth")]
    InvalidMailpitAuth,
    /// A zero timeout would fail every request.
    #[error("the email provider timeout must be longer than zero")]
    ZeroTimeout,
    /// The HTTP client could not be set up.
    #[error("could not set up the HTTP client for {provider}")]
    Client {
        provider: &'static str,
        #[source]
        source: reqwest::Error,
    },
}

/// Builds the configured provider, checking its settings first.
pub fn build(config: &ProviderConfig) -> Result<Arc<dyn Provider>, ConfigError> {
    let kind = config.kind;
    if kind == ProviderKind::Log {
        return Ok(Arc::new(log::LogProvider::new()));
    }
    if config.timeout.is_zero() {
        return Err(ConfigError::ZeroTimeout);
    }
    let base_url = base_url(config)?;
    let client = http::client(config.timeout).map_err(|source| ConfigError::Client {
        provider: kind.as_str(),
        source,
    })?;
    let provider: Arc<dyn Provider> = match kind {
        ProviderKind::Log => Arc::new(log::LogProvider::new()),
        ProviderKind::Postmark => Arc::new(postmark::Postmark::new(
            client,
            base_url,
            required_key(config)?,
            config.postmark_message_stream.clone(),
        )),
        ProviderKind::Resend => {
            Arc::new(resend::Resend::new(client, base_url, required_key(config)?))
        }
        ProviderKind::Sendgrid => Arc::new(sendgrid::Sendgrid::new(
            client,
            base_url,
            required_key(config)?,
        )),
        ProviderKind::Mailpit => Arc::new(mailpit::Mailpit::new(
            client,
            base_url,
            mailpit_auth(config)?,
        )),
    };
    Ok(provider)
}

/// The configured key, trimmed, if it is not blank.
fn key(config: &ProviderConfig) -> Option<String> {
    config
        .api_key
        .as_deref()
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
}

fn required_key(config: &ProviderConfig) -> Result<String, ConfigError> {
    key(config).ok_or(ConfigError::MissingKey {
        provider: config.kind.as_str(),
        variable: config.kind.key_variable(),
    })
}

fn mailpit_auth(config: &ProviderConfig) -> Result<Option<(String, String)>, ConfigError> {
    match key(config) {
        None => Ok(None),
        Some(key) => match key.split_once(':') {
            Some((user, password)) if !user.is_empty() => {
                Ok(Some((user.to_owned(), password.to_owned())))
            }
            _ => Err(ConfigError::InvalidMailpitAuth),
        },
    }
}

/// The base URL without a trailing slash, checked to be absolute http(s).
fn base_url(config: &ProviderConfig) -> Result<String, ConfigError> {
    let configured = config
        .base_url
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty());
    let url = configured
        .unwrap_or(config.kind.default_base_url())
        .trim_end_matches('/');
    match reqwest::Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.has_host() => {
            Ok(url.to_owned())
        }
        _ => Err(ConfigError::InvalidBaseUrl {
            provider: config.kind.as_str(),
            url: url.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(kind: ProviderKind, base_url: Option<&str>, api_key: Option<&str>) -> ProviderConfig {
        ProviderConfig {
            kind,
            base_url: base_url.map(str::to_owned),
            api_key: api_key.map(str::to_owned),
            timeout: Duration::from_secs(5),
            postmark_message_stream: "outbound".into(),
        }
    }

    #[test]
    fn every_provider_builds_with_the_settings_it_needs() {
        let cases = [
            (ProviderKind::Log, None),
            (ProviderKind::Postmark, Some("token")),
            (ProviderKind::Resend, Some("re_key")),
            (ProviderKind::Sendgrid, Some("SG.key")),
            (ProviderKind::Mailpit, None),
            (ProviderKind::Mailpit, Some("user:secret")),
        ];
        for (kind, key) in cases {
            let built = build(&config(kind, None, key));
            assert!(built.is_ok(), "{kind}: {:?}", built.err());
            assert_eq!(built.map(|p| p.name()).ok(), Some(kind.as_str()));
        }
    }

    #[test]
    fn bad_settings_are_refused_with_a_message_naming_the_fix() {
        let cases = [
            (
                config(ProviderKind::Postmark, None, None),
                "set POSTMARK_SERVER_TOKEN",
            ),
            (
                config(ProviderKind::Resend, None, Some("  ")),
                "set RESEND_API_KEY",
            ),
            (
                config(ProviderKind::Sendgrid, None, None),
                "set SENDGRID_API_KEY",
            ),
            (
                config(ProviderKind::Mailpit, None, Some("nocolon")),
                "user:password",
            ),
            (
                config(ProviderKind::Resend, Some("api.resend.com"), Some("k")),
                "not an absolute",
            ),
            (
                config(ProviderKind::Resend, Some("ftp://x.io"), Some("k")),
                "not an absolute",
            ),
            (
                ProviderConfig {
                    timeout: Duration::ZERO,
                    ..config(ProviderKind::Mailpit, None, None)
                },
                "longer than zero",
            ),
        ];
        for (config, expected) in cases {
            let message = build(&config)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(message.contains(expected), "{:?}: {message}", config.kind);
        }
    }
}
