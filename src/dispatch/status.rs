//! What the in-process dispatcher is doing, for `/readyz` and the logs.

use serde::Serialize;
use std::sync::Mutex;

/// The dispatcher's state as `/readyz` shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct DispatchState {
    /// The configured provider.
    #[schema(example = "postmark")]
    pub provider: String,
    /// `running`, or `paused` when the provider refused our credentials or
    /// account (nothing is lost: invitations stay queued).
    #[schema(example = "running")]
    pub state: String,
    /// Why dispatch is paused.
    pub reason: Option<String>,
}

/// Shared between the dispatcher task and the HTTP handlers.
#[derive(Debug)]
pub struct DispatchStatus {
    inner: Mutex<DispatchState>,
}

impl DispatchStatus {
    pub fn new(provider: &str) -> DispatchStatus {
        DispatchStatus {
            inner: Mutex::new(DispatchState {
                provider: provider.to_owned(),
                state: "running".into(),
                reason: None,
            }),
        }
    }

    /// A copy of the current state.
    pub fn get(&self) -> DispatchState {
        match self.inner.lock() {
            Ok(state) => state.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Marks dispatch paused (with why) or running (`None`).
    pub fn set_paused(&self, reason: Option<String>) {
        let mut state = match self.inner.lock() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        };
        state.state = if reason.is_some() {
            "paused"
        } else {
            "running"
        }
        .into();
        state.reason = reason;
    }
}
