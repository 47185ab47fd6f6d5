//! The provider trait: what every email provider adapter does. A
//! provider's wire format never leaves its own file under `providers/`.

use std::collections::BTreeMap;
use std::time::Duration;

/// One invitation email, rendered and ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The invitation's id; every adapter puts it in the provider's
    /// metadata, tag or custom-args field so delivery events can be matched.
    pub invitation_id: String,
    /// The recipient's address.
    pub to: String,
    /// The rendered subject.
    pub subject: String,
    /// The rendered plain-text body.
    pub text: String,
    /// The rendered HTML body.
    pub html: String,
    /// The values that differ per recipient, by placeholder name (for
    /// providers that send one shared body with substitutions: SendGrid).
    pub substitutions: BTreeMap<String, String>,
}

/// The content every message of a batch shares, with each per-recipient
/// value left as a placeholder `-name-` (the keys of
/// [`Message::substitutions`]). Only SendGrid uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedContent {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// A batch to send: at most [`Provider::max_batch`] messages.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    /// The sender address (`EMAIL_FROM`).
    pub from: &'a str,
    /// The messages, in order; outcomes come back in the same order.
    pub messages: &'a [Message],
    /// The same content as a template with placeholders.
    pub shared: &'a SharedContent,
    /// Stays the same when this batch is retried (Resend's `Idempotency-Key`).
    pub idempotency_key: &'a str,
}

/// What happened to one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The provider accepted it; its message id, when it gives one.
    Sent { message_id: Option<String> },
    /// Try this message again later (after `after` if the provider said).
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    /// The provider refused this recipient for good (e.g. inactive or invalid).
    Failed { reason: String },
}

/// What went wrong with a whole batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// Network error, timeout, 429 or 5xx: retry the batch (after `after`
    /// if the provider said, e.g. `Retry-After` or a rate-limit reset).
    #[error("{reason}")]
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    /// Credentials or account refused (401/403, suspended sending): stop
    /// sending through this provider; nothing is lost, the batch stays queued.
    #[error("{reason}")]
    Paused { reason: String },
    /// The provider refused the whole batch for good (e.g. 400/422 for the
    /// request itself): every message fails with this reason.
    #[error("{reason}")]
    Rejected { reason: String },
}

/// An email provider.
#[async_trait::async_trait]
pub trait Provider: Send + Sync + 'static {
    /// The provider's name as configured (`log`, `postmark`, ...).
    fn name(&self) -> &'static str;

    /// The most messages one call of [`Provider::send`] takes.
    fn max_batch(&self) -> usize;

    /// Sends a batch; on success returns exactly one outcome per message,
    /// in the batch's order.
    async fn send(&self, batch: Batch<'_>) -> Result<Vec<Outcome>, BatchError>;
}
