//! What the in-process dispatcher is doing, for `/readyz`, `/metrics` and
//! the logs.

use super::provider::PauseCause;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// The dispatcher's state as `/readyz` shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct DispatchState {
    /// The configured provider.
    #[schema(value_type = ProviderName, example = "postmark")]
    pub provider: String,
    /// `running`; `paused` when the provider limited us or refused our
    /// credentials, sender or quota (nothing is lost: invitations stay
    /// queued and no attempt is counted); `stopped` when the dispatcher
    /// ended and sends nothing more until the process restarts.
    #[schema(value_type = RunState, example = "running")]
    pub state: String,
    /// Why dispatch is paused or stopped.
    pub reason: Option<String>,
    /// What kind of pause: `rate_limit`, `quota` or `configuration`.
    #[schema(value_type = Option<PauseCauseName>, example = "quota")]
    pub cause: Option<String>,
}

/// The closed sets of [`DispatchState`]'s fields, for the schema.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum RunState {
    Running,
    Paused,
    Stopped,
}

/// The email providers a dispatcher can send through.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum ProviderName {
    Log,
    Postmark,
    Resend,
    Sendgrid,
    Mailpit,
}

/// Why dispatch is paused.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum PauseCauseName {
    RateLimit,
    Quota,
    Configuration,
}

/// Shared between the dispatcher task and the HTTP handlers.
#[derive(Debug)]
pub struct DispatchStatus {
    inner: Mutex<DispatchState>,
    step_failures: AtomicU64,
}

impl DispatchStatus {
    pub fn new(provider: &str) -> DispatchStatus {
        DispatchStatus {
            inner: Mutex::new(DispatchState {
                provider: provider.to_owned(),
                state: "running".into(),
                reason: None,
                cause: None,
            }),
            step_failures: AtomicU64::new(0),
        }
    }

    /// A copy of the current state.
    pub fn get(&self) -> DispatchState {
        crate::locked(&self.inner).clone()
    }

    /// Marks dispatch paused (with why) or running (`None`).
    pub fn set_paused(&self, pause: Option<(String, PauseCause)>) {
        self.update(|state| {
            state.state = if pause.is_some() { "paused" } else { "running" }.into();
            state.cause = pause.as_ref().map(|(_, cause)| cause.as_str().to_owned());
            state.reason = pause.map(|(reason, _)| reason);
        });
    }

    /// Marks the dispatcher stopped for good.
    pub fn set_stopped(&self, reason: &str) {
        self.update(|state| {
            state.state = "stopped".into();
            state.reason = Some(reason.to_owned());
            state.cause = None;
        });
    }

    /// Counts a dispatch step or expiry sweep that failed or panicked (and
    /// was survived).
    pub fn count_failure(&self) {
        self.step_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// How many dispatch steps failed or panicked since the process started.
    pub fn step_failures(&self) -> u64 {
        self.step_failures.load(Ordering::Relaxed)
    }

    fn update(&self, change: impl FnOnce(&mut DispatchState)) {
        let mut state = crate::locked(&self.inner);
        change(&mut state);
    }
}
