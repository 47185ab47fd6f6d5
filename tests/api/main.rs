//! Integration tests: the real app on a real port, against a real SQLite
//! file and (when `TEST_POSTGRES_URL` is set; CI always sets it) a real
//! PostgreSQL database. Every test runs once per backend.

mod browser;
mod browser_accept;
mod browser_email;
mod browser_swagger;
mod helpers;
mod served;

mod accept_pages;
mod account_scale;
mod cancel_in_flight;
mod cancel_unconfirmed;
mod contract;
mod db_limits;
mod dispatch;
mod dispatch_ambiguous;
mod dispatch_pauses;
mod dispatch_recipients;
mod dispatch_survival;
mod errors;
mod fakes;
mod first_account;
mod health_and_contract;
mod hostile;
mod imports;
mod inputs;
mod invitee;
mod isolation;
mod keys_and_limits;
mod lifecycle;
mod migrations;
mod reports;
mod resend_rules;
mod retention;
mod tricky_files;
mod users;
mod wal_bound;
mod webhooks;
mod workers;
