//! The provider trait: what every email provider adapter does. A
//! provider's wire format never leaves its own file under `providers/`.

use std::collections::BTreeMap;
use std::sync::Arc;
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
    /// Where replies go (the account's reply-to address), if it set one.
    pub reply_to: Option<String>,
    /// The same email as a template with placeholders, shared by every
    /// message of the same language and shape (for providers that send one
    /// shared body with substitutions: SendGrid).
    pub shared: Arc<SharedContent>,
    /// The values that differ per recipient, by placeholder name (the
    /// placeholders of [`Message::shared`]).
    pub substitutions: BTreeMap<String, String>,
}

/// The content messages of one language and shape share, with each
/// per-recipient value left as a placeholder `-name-` (the keys of
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
    /// Stays the same when this batch is retried (Resend's `Idempotency-Key`).
    pub idempotency_key: &'a str,
    /// The batch's id: the same on every try, and kept by what is left of
    /// it when some members are settled (Postmark's metadata, to look the
    /// batch up after an ambiguous outcome).
    pub batch_id: &'a str,
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
    /// The request for this message may have reached the provider, but no
    /// answer says whether it was accepted (see [`BatchError::Unknown`]).
    Unknown { reason: String },
    /// Not sent only because the provider refused another message of the
    /// same request: send it again at once, without counting an attempt.
    Unsent,
}

/// Why dispatch pauses: nothing of the batch was sent and no attempt is
/// counted; sending resumes after the wait, by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PauseCause {
    /// Too many requests (HTTP 429 and the like): slow down.
    RateLimit,
    /// A daily or monthly sending quota is used up.
    Quota,
    /// Our credentials, sender, domain or stream are refused: someone must
    /// fix the configuration.
    Configuration,
}

impl PauseCause {
    /// The name `/readyz` and `/metrics` show.
    pub fn as_str(self) -> &'static str {
        match self {
            PauseCause::RateLimit => "rate_limit",
            PauseCause::Quota => "quota",
            PauseCause::Configuration => "configuration",
        }
    }
}

/// What went wrong with a whole batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// Not accepted, for a reason that passes (no connection, 408, 5xx):
    /// retry the batch (after `after` if the provider said); counts an attempt.
    #[error("{reason}")]
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    /// The request may have reached the provider but no answer came (a
    /// timeout, a connection lost after the request was written): the batch
    /// may have been accepted, so it never fails for this; the dispatcher
    /// finds out what was accepted before sending again.
    #[error("{reason}")]
    Unknown { reason: String },
    /// Nothing was sent and trying again now is pointless (rate limit,
    /// quota, refused credentials or sender): dispatch pauses for `after`
    /// (the provider's hint) or `DISPATCH_PAUSE_SECS`; no attempt is counted.
    #[error("{reason}")]
    Paused {
        reason: String,
        cause: PauseCause,
        after: Option<Duration>,
    },
    /// The request was too large (HTTP 413): the batch is split in two.
    #[error("{reason}")]
    TooLarge { reason: String },
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

    /// How this provider settles a batch whose earlier try may have been
    /// accepted.
    fn recovery(&self) -> Recovery {
        Recovery::None
    }

    /// For [`Recovery::Search`]: which messages of the batch the provider
    /// already accepted, with their message ids (`None`: not accepted).
    async fn accepted(&self, batch: Batch<'_>) -> Result<Vec<Option<String>>, BatchError> {
        Ok(vec![None; batch.messages.len()])
    }
}

/// What a provider offers to settle an ambiguous outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// The same request under the same idempotency key returns the first
    /// answer (Resend, for 24 hours): sending again is the lookup.
    Idempotent,
    /// Accepted messages can be searched for ([`Provider::accepted`]).
    Search,
    /// Neither: sending again may repeat the batch (once at most).
    None,
}
