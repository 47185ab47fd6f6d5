//! The dispatcher loop: claim a batch under a lease, render it, send it
//! through the provider, record each outcome; pause on credential errors,
//! back off on transient ones, and stop cleanly between batches.

use super::pace::{backoff, RateLimit};
use super::provider::{Batch, BatchError, Message, Outcome, Provider, SharedContent};
use super::providers::{self, ProviderKind};
use super::template::{substitutions, EmailValues, Templates};
use super::token::{self, TokenMaker};
use super::DispatchStatus;
use crate::config::DispatchConfig;
use crate::db::dispatch::{self as queue, BatchContext, Claimed, Record};
use crate::db::lifecycle::{self, Change, Target};
use crate::db::{now, DbConnection, Pool};
use anyhow::Context;
use chrono::NaiveDateTime;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// What one [`Dispatcher::step`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// A batch of this many invitations was tried and recorded.
    Batch(usize),
    /// Nothing was due.
    Idle,
    /// The provider refused our credentials or account; the batch was released.
    Paused,
}

/// What an invitation's record holds once its email is sent, fixed when
/// the email is rendered: the hash of the token in its link, and its expiry.
#[derive(Debug, Clone)]
struct Sealed {
    token_hash: String,
    expires_at: NaiveDateTime,
}

/// Sends queued invitations. Any number may run, in any number of
/// processes, against one database.
pub struct Dispatcher {
    pool: Pool,
    provider: Arc<dyn Provider>,
    templates: Templates,
    shared: SharedContent,
    tokens: TokenMaker,
    config: DispatchConfig,
    batch_size: usize,
    status: Arc<DispatchStatus>,
    owner: String,
}

impl Dispatcher {
    /// Builds a dispatcher from the configuration (checking the provider
    /// settings and templates now, so a mistake stops the start).
    pub fn new(pool: Pool, config: &DispatchConfig) -> anyhow::Result<Dispatcher> {
        let provider = providers::build(&config.provider())?;
        let templates = Templates::load(config.email_template_dir.as_deref())?;
        let shared = templates.shared()?;
        if config.token_secret.is_none() {
            tracing::info!(
                "BULK_INVITE_TOKEN_SECRET is not set: using a random secret for this process; \
                 set the same secret on every process so a batch retried elsewhere carries the same link"
            );
        }
        let batch_size = match config.batch_size {
            0 => provider.max_batch(),
            n => n.min(provider.max_batch()),
        };
        Ok(Dispatcher {
            status: Arc::new(DispatchStatus::new(provider.name())),
            pool,
            provider,
            templates,
            shared,
            tokens: TokenMaker::new(config.token_secret.as_deref()),
            config: config.clone(),
            batch_size,
            owner: format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple()),
        })
    }

    /// The state `/readyz` shows.
    pub fn status(&self) -> Arc<DispatchStatus> {
        self.status.clone()
    }

    /// Runs until `shutdown` turns true; a batch in progress is finished
    /// and recorded first, so no lease is left behind.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut rate = RateLimit::new(self.rate_limit());
        tracing::info!(provider = self.provider.name(), owner = %self.owner, batch = self.batch_size, "dispatcher started");
        let sweep_every = Duration::from_secs(self.config.expiry_sweep_secs);
        let mut last_sweep: Option<std::time::Instant> = None;
        while !*shutdown.borrow() {
            if last_sweep.is_none_or(|at| at.elapsed() >= sweep_every) {
                last_sweep = Some(std::time::Instant::now());
                if let Err(error) = self.expire().await {
                    tracing::error!(error = format!("{error:#}"), "expiry sweep failed");
                }
            }
            let wait = match self.step(&mut rate).await {
                Ok(Step::Batch(_)) => continue,
                Ok(Step::Idle) => Duration::from_millis(self.config.poll_ms),
                Ok(Step::Paused) => Duration::from_secs(self.config.pause_secs),
                Err(error) => {
                    tracing::error!(error = format!("{error:#}"), "dispatch step failed");
                    Duration::from_millis(self.config.poll_ms)
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => {}
            }
        }
        tracing::info!(owner = %self.owner, "dispatcher stopped");
    }

    /// Marks sent invitations whose expiry has passed `expired` (in their
    /// report and counts too); returns how many.
    pub async fn expire(&self) -> anyhow::Result<usize> {
        let expired = self
            .db(|conn| {
                let now = now();
                let change = Change::new(&["sent", "delivered"], "expired");
                Ok(lifecycle::apply(conn, Target::ExpiredBy(now), &change, now)?.len())
            })
            .await?;
        if expired > 0 {
            tracing::info!(expired, "invitations expired");
        }
        Ok(expired)
    }

    /// Claims, sends and records one batch.
    pub async fn step(&self, rate: &mut RateLimit) -> anyhow::Result<Step> {
        let (owner, limit) = (self.owner.clone(), self.batch_size as i64);
        let lease = chrono::Duration::seconds(self.config.lease_secs as i64);
        let claimed = self
            .db(move |conn| {
                let now = now();
                Ok(queue::claim(conn, &owner, now, now + lease, limit)?)
            })
            .await?;
        if claimed.is_empty() {
            return Ok(Step::Idle);
        }
        let batch = claimed.clone();
        let context = self
            .db(move |conn| Ok(queue::batch_context(conn, &batch)?))
            .await?;
        let sent_at = now();
        let (messages, sealed) = self.render(&claimed, &context, sent_at)?;
        tokio::time::sleep(rate.reserve(messages.len())).await;
        let key = self.idempotency_key(&claimed);
        let result = self
            .provider
            .send(Batch {
                from: &self.config.email_from,
                messages: &messages,
                shared: &self.shared,
                idempotency_key: &key,
            })
            .await;
        if let Err(BatchError::Paused { reason }) = &result {
            return self.pause(claimed, reason).await;
        }
        if self.status.get().reason.is_some() {
            tracing::info!(provider = self.provider.name(), "dispatch resumed");
            self.status.set_paused(None);
        }
        let records = self.records(claimed, result, sealed, sent_at);
        let count = records.len();
        self.db(move |conn| Ok(queue::record(conn, &records, now())?))
            .await?;
        Ok(Step::Batch(count))
    }

    /// When an invitation sent at `sent_at` expires: after its import's
    /// expiry, or the configured default.
    fn expiry(&self, c: &Claimed, context: &BatchContext, sent_at: NaiveDateTime) -> NaiveDateTime {
        let days = context
            .imports
            .get(&c.import_id)
            .and_then(|(_, days)| *days)
            .map_or(self.config.invitation_ttl_days, i64::from);
        sent_at + chrono::Duration::days(days)
    }

    /// The emails of a batch, and for each what is stored once it is sent.
    fn render(
        &self,
        claimed: &[Claimed],
        context: &BatchContext,
        sent_at: NaiveDateTime,
    ) -> anyhow::Result<(Vec<Message>, Vec<Sealed>)> {
        let base = self.config.public_base_url.trim_end_matches('/');
        claimed
            .iter()
            .map(|c| {
                let token = self.tokens.token(&c.id, c.token_version);
                let accept_url = format!("{base}/invitations/accept/{token}");
                let expires_at = self.expiry(c, context, sent_at);
                let expires = expires_at.format("%Y-%m-%d %H:%M UTC").to_string();
                let message = context
                    .imports
                    .get(&c.import_id)
                    .and_then(|(m, _)| m.as_deref());
                let values = EmailValues {
                    account_name: context
                        .account_names
                        .get(&c.account_id)
                        .map_or("your team", String::as_str),
                    email: &c.email,
                    accept_url: &accept_url,
                    expires_at: &expires,
                    message: message.unwrap_or(""),
                };
                let rendered = self
                    .templates
                    .render(&values)
                    .context("rendering an invitation")?;
                let message = Message {
                    invitation_id: c.id.clone(),
                    to: c.email.clone(),
                    subject: rendered.subject,
                    text: rendered.text,
                    html: rendered.html,
                    substitutions: substitutions(&values),
                };
                let sealed = Sealed {
                    token_hash: token::hash(&token),
                    expires_at,
                };
                Ok((message, sealed))
            })
            .collect()
    }

    /// One record per claimed invitation from the provider's answer.
    fn records(
        &self,
        claimed: Vec<Claimed>,
        result: Result<Vec<Outcome>, BatchError>,
        sealed: Vec<Sealed>,
        sent_at: NaiveDateTime,
    ) -> Vec<(Claimed, Record)> {
        let outcomes = match result {
            Ok(outcomes) if outcomes.len() == claimed.len() => outcomes,
            Ok(outcomes) => {
                let reason = format!(
                    "the provider answered {} results for {} messages",
                    outcomes.len(),
                    claimed.len()
                );
                vec![
                    Outcome::Retry {
                        reason,
                        after: None
                    };
                    claimed.len()
                ]
            }
            Err(BatchError::Retry { reason, after }) => {
                tracing::warn!(provider = self.provider.name(), %reason, "batch will be retried");
                vec![Outcome::Retry { reason, after }; claimed.len()]
            }
            Err(BatchError::Rejected { reason } | BatchError::Paused { reason }) => {
                tracing::warn!(provider = self.provider.name(), %reason, "batch refused");
                vec![Outcome::Failed { reason }; claimed.len()]
            }
        };
        let base = Duration::from_millis(self.config.backoff_ms);
        claimed
            .into_iter()
            .zip(outcomes.into_iter().zip(sealed))
            .map(|(c, (outcome, sealed))| {
                let record = match outcome {
                    Outcome::Sent { message_id } => Record::Sent {
                        message_id,
                        token_hash: sealed.token_hash,
                        sent_at,
                        expires_at: sealed.expires_at,
                    },
                    Outcome::Failed { reason } => Record::Failed { reason },
                    Outcome::Retry { reason, .. } if c.attempts >= self.config.max_attempts => {
                        Record::Failed { reason }
                    }
                    Outcome::Retry { reason, after } => {
                        let delay = backoff(base, c.attempts, after);
                        let at = now() + chrono::Duration::from_std(delay).unwrap_or_default();
                        Record::Retry { reason, at }
                    }
                };
                (c, record)
            })
            .collect()
    }

    async fn pause(&self, claimed: Vec<Claimed>, reason: &str) -> anyhow::Result<Step> {
        tracing::error!(
            provider = self.provider.name(),
            %reason,
            "DISPATCH PAUSED: the provider refused our credentials or account; invitations stay queued \
             and sending is retried every {}s",
            self.config.pause_secs
        );
        self.status.set_paused(Some(reason.to_owned()));
        let owner = self.owner.clone();
        let ids: Vec<String> = claimed.into_iter().map(|c| c.id).collect();
        self.db(move |conn| Ok(queue::release(conn, &owner, &ids)?))
            .await?;
        Ok(Step::Paused)
    }

    /// The same for every retry of the same batch (same members, same
    /// secret), so a provider that honours it sends the batch once.
    fn idempotency_key(&self, claimed: &[Claimed]) -> String {
        use sha2::{Digest, Sha256};
        let mut hash = Sha256::new();
        hash.update(self.tokens.fingerprint());
        for c in claimed {
            hash.update(c.id.as_bytes());
            hash.update(c.token_version.to_le_bytes());
        }
        let batch = claimed.first().map_or("", |c| c.batch_id.as_str());
        format!("{batch}-{}", &hex::encode(hash.finalize())[..16])
    }

    fn rate_limit(&self) -> f64 {
        match (self.config.email_rate_limit, self.config.email_provider) {
            // Resend allows 2 requests per second by default.
            (limit, ProviderKind::Resend) if limit <= 0.0 => 2.0 * self.batch_size as f64,
            (limit, _) => limit.max(0.0),
        }
    }

    async fn db<T, F>(&self, f: F) -> anyhow::Result<T>
    where
        F: FnOnce(&mut DbConnection) -> anyhow::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || f(&mut *pool.get()?)).await?
    }
}
