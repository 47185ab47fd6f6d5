//! The dispatcher loop: claim a batch under a lease, render it from what
//! its first claim fixed, settle an earlier ambiguous try where the
//! provider can tell, send the rest, record each outcome; pause on rate
//! limits, quotas and configuration errors without spending attempts;
//! survive a failing or panicking step; stop cleanly between batches.

use super::compose::Composer;
use super::link::AcceptLink;
use super::pace::Pace;
use super::provider::{BatchError, Outcome, PauseCause, Provider, Recovery};
use super::providers;
use super::settle::{self, Rules};
use super::template::Templates;
use super::token::TokenMaker;
use super::DispatchStatus;
use crate::config::DispatchConfig;
use crate::db::dispatch::{self as queue, Claimed};
use crate::db::lifecycle::{self, Change, Target};
use crate::db::{now, DbConnection, Pool};
use futures_util::FutureExt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

mod batch;

/// What one [`Dispatcher::step`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// A batch of this many invitations was tried and recorded.
    Batch(usize),
    /// Nothing was due.
    Idle,
    /// The provider asked us to stop for this long; the batch was released.
    Paused(Duration),
}

/// Sends queued invitations. Any number may run, in any number of
/// processes, against one database.
pub struct Dispatcher {
    pool: Pool,
    provider: Arc<dyn Provider>,
    templates: Templates,
    tokens: TokenMaker,
    link: AcceptLink,
    config: DispatchConfig,
    batch_size: usize,
    status: Arc<DispatchStatus>,
    owner: String,
}

/// Marks the dispatcher stopped when its task ends, however it ends.
struct StoppedOnDrop(Arc<DispatchStatus>);

impl Drop for StoppedOnDrop {
    fn drop(&mut self) {
        let reason = if std::thread::panicking() {
            "the dispatcher task panicked"
        } else {
            "the dispatcher was asked to stop"
        };
        self.0.set_stopped(reason);
    }
}

impl Dispatcher {
    /// Builds a dispatcher from the configuration (checking the provider
    /// settings and templates now, so a mistake stops the start).
    pub fn new(pool: Pool, config: &DispatchConfig) -> anyhow::Result<Dispatcher> {
        let provider = providers::build(&config.provider())?;
        Self::with_provider(pool, config, provider)
    }

    /// A dispatcher sending through `provider` instead of the configured one.
    pub fn with_provider(
        pool: Pool,
        config: &DispatchConfig,
        provider: Arc<dyn Provider>,
    ) -> anyhow::Result<Dispatcher> {
        let templates = Templates::load(config.email_template_dir.as_deref())?;
        let link = AcceptLink::parse(
            &config.public_base_url,
            config.accept_url_template.as_deref(),
        )?;
        if let Some(product) = &config.product_name {
            crate::domain::DisplayName::parse(product)
                .map_err(|e| anyhow::anyhow!("PRODUCT_NAME {e}"))?;
        }
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
            tokens: TokenMaker::new(config.token_secret.as_deref()),
            link,
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
    /// and recorded first, so no lease is left behind. A step that fails or
    /// panics is logged and counted, and the loop goes on.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let _stopped = StoppedOnDrop(self.status.clone());
        let mut pace = self.pace();
        tracing::info!(provider = self.provider.name(), owner = %self.owner, batch = self.batch_size, "dispatcher started");
        let sweep_every = Duration::from_secs(self.config.expiry_sweep_secs);
        let poll = Duration::from_millis(self.config.poll_ms);
        let mut last_sweep: Option<std::time::Instant> = None;
        while !*shutdown.borrow() {
            if last_sweep.is_none_or(|at| at.elapsed() >= sweep_every) {
                last_sweep = Some(std::time::Instant::now());
                if let Err(error) = self.expire().await {
                    self.status.count_failure();
                    tracing::error!(error = format!("{error:#}"), "expiry sweep failed");
                }
            }
            let wait = match AssertUnwindSafe(self.step(&mut pace)).catch_unwind().await {
                Ok(Ok(Step::Batch(_))) => continue,
                Ok(Ok(Step::Idle)) => poll,
                Ok(Ok(Step::Paused(wait))) => wait,
                Ok(Err(error)) => {
                    self.status.count_failure();
                    tracing::error!(error = format!("{error:#}"), "dispatch step failed");
                    poll
                }
                Err(panic) => {
                    self.status.count_failure();
                    let message = panic
                        .downcast_ref::<String>()
                        .map(String::as_str)
                        .or_else(|| panic.downcast_ref::<&str>().copied())
                        .unwrap_or("(no message)");
                    tracing::error!(
                        panic = message,
                        "dispatch step panicked; its batch is retried when its lease ends"
                    );
                    poll
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

    /// The pace the provider allows: configured, or its documented default.
    pub fn pace(&self) -> Pace {
        let requests = match self.config.email_request_rate_limit {
            limit if limit > 0.0 => limit,
            _ => self.config.email_provider.default_request_rate(),
        };
        Pace::new(requests, self.config.email_rate_limit.max(0.0))
    }

    /// Claims, sends and records one batch.
    pub async fn step(&self, pace: &mut Pace) -> anyhow::Result<Step> {
        let (owner, limit) = (self.owner.clone(), self.batch_size as i64);
        let lease = chrono::Duration::seconds(self.config.lease_secs.min(86_400 * 365) as i64);
        let mut claimed = self
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
        self.seal(&mut claimed, &context).await?;
        let (messages, sealed) = self.composer().render(&claimed, &context)?;
        let mut outcomes: Vec<Option<Outcome>> = vec![None; claimed.len()];
        if claimed.iter().any(|c| c.maybe_sent) && self.provider.recovery() == Recovery::Search {
            self.settle_earlier_try(&mut claimed, &messages, &mut outcomes)
                .await;
        }
        let pending: Vec<usize> = (0..claimed.len())
            .filter(|i| outcomes[*i].is_none())
            .collect();
        if !pending.is_empty() {
            match self.send(pace, &claimed, &messages, &pending).await {
                Err(BatchError::Paused {
                    reason,
                    cause,
                    after,
                }) => {
                    // The members not sent are given back by `record`,
                    // before anyone can see dispatch paused.
                    self.record(&claimed, outcomes, &sealed).await?;
                    return Ok(Step::Paused(self.pause(reason, cause, after)));
                }
                Err(BatchError::TooLarge { reason }) if pending.len() > 1 => {
                    tracing::warn!(provider = self.provider.name(), %reason, size = pending.len(), "batch too large: split in two");
                    self.split(&claimed, &pending).await?;
                    self.record(&claimed, outcomes, &sealed).await?;
                    return Ok(Step::Batch(0));
                }
                result => {
                    self.resume();
                    if let Err(error) = &result {
                        tracing::warn!(provider = self.provider.name(), %error, "batch not sent");
                    }
                    let answered = settle::answered(result, pending.len());
                    for (i, outcome) in pending.iter().zip(answered) {
                        outcomes[*i] = Some(outcome);
                    }
                }
            }
        }
        let count = claimed.len();
        self.record(&claimed, outcomes, &sealed).await?;
        Ok(Step::Batch(count))
    }

    /// Shows dispatch paused; returns how long to wait.
    fn pause(&self, reason: String, cause: PauseCause, after: Option<Duration>) -> Duration {
        let cap = Duration::from_secs(self.config.max_backoff_secs);
        let wait = after
            .unwrap_or(Duration::from_secs(self.config.pause_secs))
            .min(cap);
        let level_error = cause == PauseCause::Configuration;
        if level_error {
            tracing::error!(provider = self.provider.name(), %reason, cause = cause.as_str(), wait = ?wait, "DISPATCH PAUSED: fix the provider settings; invitations stay queued");
        } else {
            tracing::warn!(provider = self.provider.name(), %reason, cause = cause.as_str(), wait = ?wait, "dispatch paused by the provider; invitations stay queued");
        }
        self.status.set_paused(Some((reason, cause)));
        wait
    }

    /// Splits the pending members in two batches, both tried again at once.
    async fn split(&self, claimed: &[Claimed], pending: &[usize]) -> anyhow::Result<()> {
        let all: Vec<String> = pending.iter().map(|i| claimed[*i].id.clone()).collect();
        let moved = all[all.len() / 2..].to_vec();
        let owner = self.owner.clone();
        self.db(move |conn| Ok(queue::split(conn, &owner, &all, &moved)?))
            .await
    }

    fn resume(&self) {
        if self.status.get().state == "paused" {
            tracing::info!(provider = self.provider.name(), "dispatch resumed");
            self.status.set_paused(None);
        }
    }

    fn composer(&self) -> Composer<'_> {
        Composer {
            templates: &self.templates,
            tokens: &self.tokens,
            link: &self.link,
            default_ttl_days: self.config.invitation_ttl_days,
            product_name: self.config.product_name.as_deref().unwrap_or(""),
        }
    }

    fn rules(&self) -> Rules {
        Rules {
            max_attempts: self.config.max_attempts,
            backoff: Duration::from_millis(self.config.backoff_ms),
            max_backoff: Duration::from_secs(self.config.max_backoff_secs),
            recovery: self.provider.recovery(),
        }
    }

    async fn db<T, F>(&self, f: F) -> anyhow::Result<T>
    where
        F: FnOnce(&mut DbConnection) -> anyhow::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || crate::db::with_pooled(&pool, f)).await?
    }
}
