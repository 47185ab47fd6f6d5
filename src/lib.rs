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
