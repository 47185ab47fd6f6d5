//! Bulk Invite: invite many people into an account at once from a plain
//! text file of email addresses.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod api;
pub mod cli;
pub mod config;
pub mod db;
pub mod dispatch;
pub mod domain;
pub mod i18n;
pub mod retention;
pub mod startup;
pub mod telemetry;

/// A mutex's value; a panic while it was held leaves state that is still
/// usable (counters, a status), so poisoning is ignored.
pub(crate) fn locked<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
