//! Resend: `POST /emails/batch` with up to 100 messages and the batch's
//! `Idempotency-Key`, so a retried batch is never sent twice. A 200 answer
//! lists one id per message, in order.
//!
//! Resend's error body is `{statusCode, name, message}`; the HTTP status
//! mostly decides (429/5xx retry, 401/403 pause: a bad key or an unverified
//! sending domain, 400/422 reject), except for the two idempotency
//! conflicts on 409.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::http::{self, Answer};
use crate::dispatch::provider::{Batch, BatchError, Message, Outcome, Provider};

const NAME: &str = "resend";
/// Resend's documented limit per batch request.
const MAX_BATCH: usize = 100;
/// The tag that carries the invitation id (tag values may hold only ASCII
/// letters, digits, `_` and `-`).
const TAG_NAME: &str = "invitation_id";
/// How long to wait when the same batch is still being processed.
const CONCURRENT_WAIT: Duration = Duration::from_secs(1);

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
            .json(&emails);
        let answer = http::send(NAME, request).await?;
        if !answer.status.is_success() {
            return Err(request_error(&answer));
        }
        outcomes(&answer, batch.messages.len())
    }
}

/// The outcomes of a 200 answer, matched to the messages by position.
fn outcomes(answer: &Answer, expected: usize) -> Result<Vec<Outcome>, BatchError> {
    let Some(created) = answer.json::<BatchAnswer>() else {
        return Err(BatchError::Retry {
            reason: answer.reason(NAME, Some("the answer has no list of ids")),
            after: None,
        });
    };
    if created.data.len() != expected {
        return Err(BatchError::Retry {
            reason: format!(
                "{NAME} answered {} ids for {expected} messages",
                created.data.len()
            ),
            after: None,
        });
    }
    Ok(created
        .data
        .into_iter()
        .map(|c| Outcome::Sent {
            message_id: Some(c.id).filter(|id| !id.is_empty()),
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
    if answer.status == reqwest::StatusCode::CONFLICT && name == "concurrent_idempotent_requests" {
        // The first request of this batch is still in flight; its result
        // will be the answer to the retry.
        return BatchError::Retry {
            reason: answer.reason(NAME, detail.as_deref()),
            after: Some(answer.retry_after().unwrap_or(CONCURRENT_WAIT)),
        };
    }
    http::status_error(NAME, answer, detail.as_deref())
}
