//! Resend: `POST /emails/batch` with up to 100 messages and the batch's
//! `Idempotency-Key`, so a retried batch is never sent twice. A 200 answer
//! lists one id per message, in order. The account's reply-to address
//! goes in each email's `reply_to`.
//!
//! Resend's error body is `{statusCode, name, message}`; the HTTP status
//! mostly decides (5xx retry, 429 pauses for `retry-after`, 401/403 pause:
//! a bad key or an unverified sending domain, 400/422 reject), except for
//! the names that say more: `daily_quota_exceeded` and
//! `monthly_quota_exceeded` pause until the quota resets,
//! `invalid_from_address` pauses until the sender is fixed, and the two
//! idempotency conflicts on 409 leave the outcome unknown (a request under
//! this key was accepted or is in flight).
//!
//! "Idempotency keys expire after 24 hours ... a request with the same key
//! returns the same response" (Resend, idempotency keys): a batch whose
//! earlier try timed out is settled by sending it again, identically.

use serde::{Deserialize, Serialize};

use super::http::{self, Answer};
use crate::dispatch::provider::{
    Batch, BatchError, Message, Outcome, PauseCause, Provider, Recovery,
};

const NAME: &str = "resend";
/// Resend's documented limit per batch request.
const MAX_BATCH: usize = 100;
/// The tag that carries the invitation id (tag values may hold only ASCII
/// letters, digits, `_` and `-`).
const TAG_NAME: &str = "invitation_id";
/// "Permissive mode: processes all emails, allowing for partial success
/// and returning validation errors if present" in `errors: [{index,
/// message}]` (Resend, batch validation modes): a bad entry fails alone.
const BATCH_VALIDATION: &str = "x-batch-validation";
/// Error names that mean a sending quota is used up.
const QUOTA_NAMES: [&str; 2] = ["daily_quota_exceeded", "monthly_quota_exceeded"];
/// Error names that mean our sender is refused, whatever the batch.
const SENDER_NAMES: [&str; 1] = ["invalid_from_address"];
/// Error names on 409 that mean a request under this key was seen before.
const IDEMPOTENCY_NAMES: [&str; 2] = [
    "concurrent_idempotent_requests",
    "invalid_idempotent_request",
];

/// Sends through Resend's batch API.
#[derive(Debug, Clone)]
pub struct Resend {
    client: reqwest::Client,
    base_url: String,
    api_key: String,
}

impl Resend {
    pub(super) fn new(client: reqwest::Client, base_url: String, api_key: String) -> Self {
        Resend {
            client,
            base_url,
            api_key,
        }
    }
}

#[derive(Serialize)]
struct Email<'a> {
    from: &'a str,
    to: [&'a str; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    reply_to: Option<&'a str>,
    subject: &'a str,
    text: &'a str,
    html: &'a str,
    tags: [Tag<'a>; 1],
}

#[derive(Serialize)]
struct Tag<'a> {
    name: &'static str,
    value: &'a str,
}

impl<'a> Email<'a> {
    fn new(from: &'a str, message: &'a Message) -> Self {
        Email {
            from,
            to: [&message.to],
            reply_to: message.reply_to.as_deref(),
            subject: &message.subject,
            text: &message.text,
            html: &message.html,
            tags: [Tag {
                name: TAG_NAME,
                value: &message.invitation_id,
            }],
        }
    }
}

#[derive(Deserialize)]
struct BatchAnswer {
    data: Vec<Created>,
    /// Permissive mode only: the entries refused, by position in the request.
    #[serde(default)]
    errors: Vec<Refused>,
}

#[derive(Deserialize)]
struct Refused {
    index: usize,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
struct Created {
    id: String,
}

#[derive(Deserialize)]
struct ErrorAnswer {
    #[serde(default)]
    name: String,
    #[serde(default)]
    message: String,
}

#[async_trait::async_trait]
impl Provider for Resend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn max_batch(&self) -> usize {
        MAX_BATCH
    }

    fn recovery(&self) -> Recovery {
        Recovery::Idempotent
    }

    async fn send(&self, batch: Batch<'_>) -> Result<Vec<Outcome>, BatchError> {
        http::check_size(NAME, batch.messages.len(), MAX_BATCH)?;
        if batch.messages.is_empty() {
            return Ok(Vec::new());
        }
        let emails: Vec<Email<'_>> = batch
            .messages
            .iter()
            .map(|message| Email::new(batch.from, message))
            .collect();
        let request = self
            .client
            .post(format!("{}/emails/batch", self.base_url))
            .bearer_auth(&self.api_key)
            .header("Idempotency-Key", batch.idempotency_key)
            .header(BATCH_VALIDATION, "permissive")
            .json(&emails);
        let answer = http::send(NAME, request).await?;
        if !answer.status.is_success() {
            return Err(request_error(&answer));
        }
        outcomes(&answer, batch.messages.len())
    }
}

/// The outcomes of a 200 answer, matched to the messages by position.
/// A 200 answer accepted the request, so one we cannot read leaves the
/// outcome unknown (a retry under the same key gets the same answer).
fn outcomes(answer: &Answer, expected: usize) -> Result<Vec<Outcome>, BatchError> {
    let Some(created) = answer.json::<BatchAnswer>() else {
        return Err(BatchError::Unknown {
            reason: answer.reason(NAME, Some("the answer has no list of ids")),
        });
    };
    let refused: Vec<Option<&Refused>> = (0..expected)
        .map(|i| created.errors.iter().find(|e| e.index == i))
        .collect();
    let accepted = refused.iter().filter(|r| r.is_none()).count();
    if created.data.len() != accepted {
        return Err(BatchError::Unknown {
            reason: format!(
                "{NAME} answered {} ids and {} errors for {expected} messages",
                created.data.len(),
                created.errors.len()
            ),
        });
    }
    let mut ids = created.data.into_iter();
    Ok(refused
        .into_iter()
        .map(|refused| match refused {
            Some(refused) => Outcome::Failed {
                reason: answer.reason(NAME, Some(&refused.message)),
            },
            None => Outcome::Sent {
                message_id: ids.next().map(|c| c.id).filter(|id| !id.is_empty()),
            },
        })
        .collect())
}

fn request_error(answer: &Answer) -> BatchError {
    let error = answer.json::<ErrorAnswer>();
    let detail = error
        .as_ref()
        .filter(|e| !e.name.is_empty() || !e.message.is_empty())
        .map(|e| format!("{}: {}", e.name, e.message.trim()));
    let name = error.as_ref().map(|e| e.name.as_str()).unwrap_or_default();
    let reason = answer.reason(NAME, detail.as_deref());
    if answer.status == reqwest::StatusCode::CONFLICT && IDEMPOTENCY_NAMES.contains(&name) {
        // A request under this key is in flight or was accepted: the next
        // try (same key, same bytes) gets its answer.
        return BatchError::Unknown { reason };
    }
    if QUOTA_NAMES.contains(&name) {
        return BatchError::Paused {
            reason,
            cause: PauseCause::Quota,
            after: answer.retry_after(),
        };
    }
    if SENDER_NAMES.contains(&name) {
        return http::configuration(reason);
    }
    http::status_error(NAME, answer, detail.as_deref())
}
