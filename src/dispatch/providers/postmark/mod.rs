//! Postmark: `POST /email/batch` with up to 500 messages, answered with one
//! result per message in the same order.
//!
//! Postmark's own error codes decide the outcome: per message, 406
//! (inactive recipient) and 300 (invalid email request) fail that
//! recipient for good and any other code is retried; for the whole request
//! (HTTP 422), codes that concern the token, the account, the sender or the
//! stream pause sending, rate limiting pauses for a while, maintenance is
//! retried, the rest reject the batch.
//!
//! The account's reply-to address goes in each message's `ReplyTo`.
//!
//! Each message carries the batch id in its metadata, so a batch whose
//! answer was lost is looked up with the outbound message search
//! ([`search`]) before anything is sent again.

mod search;

use serde::{Deserialize, Serialize};

use super::http::{self, Answer};
use crate::dispatch::provider::{
    Batch, BatchError, Message, Outcome, PauseCause, Provider, Recovery,
};

const NAME: &str = "postmark";
/// Postmark's documented limit per batch request.
const MAX_BATCH: usize = 500;
/// Every invitation carries this tag, for filtering in Postmark's activity.
const TAG: &str = "invitation";

/// Per-message codes that fail that recipient for good: 406 inactive
/// recipient (bounced, unsubscribed or complained), 300 invalid email request.
const RECIPIENT_CODES: [i64; 2] = [406, 300];
/// Codes about the token or the account, not the message: 10 bad or missing
/// token, 400 sender signature not found, 401 sender signature not
/// confirmed, 405 not allowed to send (e.g. out of credits), 412 account
/// pending approval, 413 account may not send.
const ACCOUNT_CODES: [i64; 6] = [10, 400, 401, 405, 412, 413];
/// Codes that pass with time: 100 maintenance.
const TRANSIENT_CODES: [i64; 1] = [100];
/// 429: rate limit exceeded.
const RATE_LIMIT_CODE: i64 = 429;
/// 1235: the message stream does not exist on this server.
const UNKNOWN_STREAM_CODE: i64 = 1235;
/// 300 is "Invalid email request"; when its message names the From
/// address, our sender is wrong, not the recipient.
const INVALID_REQUEST_CODE: i64 = 300;

/// Whether a code (with its message) is about our configuration: the token,
/// the account, the sender or the stream.
fn is_configuration(code: i64, message: &str) -> bool {
    ACCOUNT_CODES.contains(&code)
        || code == UNKNOWN_STREAM_CODE
        || (code == INVALID_REQUEST_CODE && message.contains("'From'"))
}

/// Sends through Postmark's batch API.
#[derive(Debug, Clone)]
pub struct Postmark {
    client: reqwest::Client,
    base_url: String,
    token: String,
    message_stream: String,
}

impl Postmark {
    pub(super) fn new(
        client: reqwest::Client,
        base_url: String,
        token: String,
        message_stream: String,
    ) -> Self {
        Postmark {
            client,
            base_url,
            token,
            message_stream,
        }
    }

    fn email<'a>(&'a self, from: &'a str, batch_id: &'a str, message: &'a Message) -> Email<'a> {
        Email {
            from,
            to: &message.to,
            reply_to: message.reply_to.as_deref(),
            subject: &message.subject,
            text_body: &message.text,
            html_body: &message.html,
            message_stream: &self.message_stream,
            tag: TAG,
            metadata: Metadata {
                invitation_id: &message.invitation_id,
                batch: batch_id,
            },
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Email<'a> {
    from: &'a str,
    to: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reply_to: Option<&'a str>,
    subject: &'a str,
    text_body: &'a str,
    html_body: &'a str,
    message_stream: &'a str,
    tag: &'a str,
    metadata: Metadata<'a>,
}

#[derive(Serialize)]
struct Metadata<'a> {
    invitation_id: &'a str,
    /// The batch id, which [`search`] filters on.
    batch: &'a str,
}

/// One entry of a batch answer, and also the body of an error answer.
#[derive(Debug, Deserialize)]
struct PostmarkResult {
    #[serde(rename = "ErrorCode", default)]
    error_code: i64,
    #[serde(rename = "Message", default)]
    message: String,
    #[serde(rename = "MessageID", default)]
    message_id: Option<String>,
}

#[async_trait::async_trait]
impl Provider for Postmark {
    fn name(&self) -> &'static str {
        NAME
    }

    fn max_batch(&self) -> usize {
        MAX_BATCH
    }

    fn recovery(&self) -> Recovery {
        Recovery::Search
    }

    async fn accepted(&self, batch: Batch<'_>) -> Result<Vec<Option<String>>, BatchError> {
        search::accepted(self, batch).await
    }

    async fn send(&self, batch: Batch<'_>) -> Result<Vec<Outcome>, BatchError> {
        http::check_size(NAME, batch.messages.len(), MAX_BATCH)?;
        if batch.messages.is_empty() {
            return Ok(Vec::new());
        }
        let emails: Vec<Email<'_>> = batch
            .messages
            .iter()
            .map(|message| self.email(batch.from, batch.batch_id, message))
            .collect();
        let request = self
            .client
            .post(format!("{}/email/batch", self.base_url))
            .header("X-Postmark-Server-Token", &self.token)
            .header(reqwest::header::ACCEPT, "application/json")
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
    // A 200 means Postmark took the request: an answer we cannot match to
    // the messages leaves their outcome unknown, settled by a search.
    let Some(results) = answer.json::<Vec<PostmarkResult>>() else {
        return Err(BatchError::Unknown {
            reason: answer.reason(NAME, Some("the answer is not a list of results")),
        });
    };
    if results.len() != expected {
        return Err(BatchError::Unknown {
            reason: format!(
                "{NAME} answered {} results for {expected} messages",
                results.len()
            ),
        });
    }
    let nothing_sent = results.iter().all(|r| r.error_code != 0);
    if nothing_sent {
        // Every message refused for an account reason: pause rather than
        // burn each invitation's attempts on a problem only ops can fix.
        if let Some(account) = results
            .iter()
            .find(|r| is_configuration(r.error_code, &r.message))
        {
            return Err(http::configuration(code_reason(account)));
        }
        // Every message refused because we send too fast: slow down
        // without spending an attempt.
        if let Some(limited) = results.iter().find(|r| r.error_code == RATE_LIMIT_CODE) {
            return Err(BatchError::Paused {
                reason: code_reason(limited),
                cause: PauseCause::RateLimit,
                after: answer.retry_after(),
            });
        }
    }
    Ok(results.into_iter().map(outcome).collect())
}

fn outcome(result: PostmarkResult) -> Outcome {
    match result.error_code {
        0 => Outcome::Sent {
            message_id: result.message_id.filter(|id| !id.is_empty()),
        },
        code if RECIPIENT_CODES.contains(&code) && !is_configuration(code, &result.message) => {
            Outcome::Failed {
                reason: code_reason(&result),
            }
        }
        _ => Outcome::Retry {
            reason: code_reason(&result),
            after: None,
        },
    }
}

fn code_reason(result: &PostmarkResult) -> String {
    format!(
        "{NAME} error {}: {}",
        result.error_code,
        result.message.trim()
    )
}

/// A non-success answer: 422 carries Postmark's `{ErrorCode, Message}`,
/// anything else is read by its HTTP status.
fn request_error(answer: &Answer) -> BatchError {
    let error = answer.json::<PostmarkResult>();
    let detail = error.as_ref().map(code_reason);
    let detail = detail.as_deref();
    match error {
        Some(error) if answer.status == reqwest::StatusCode::UNPROCESSABLE_ENTITY => {
            let reason = answer.reason(NAME, detail);
            if is_configuration(error.error_code, &error.message) {
                http::configuration(reason)
            } else if error.error_code == RATE_LIMIT_CODE {
                BatchError::Paused {
                    reason,
                    cause: PauseCause::RateLimit,
                    after: answer.retry_after(),
                }
            } else if TRANSIENT_CODES.contains(&error.error_code) {
                BatchError::Retry {
                    reason,
                    after: answer.retry_after(),
                }
            } else {
                BatchError::Rejected { reason }
            }
        }
        _ => http::status_error(NAME, answer, detail),
    }
}
