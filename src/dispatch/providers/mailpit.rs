//! Mailpit (local development): its send API, `POST /api/v1/send`, takes one
//! message per request and answers `{"ID": ...}`. The adapter sends the
//! batch's messages one by one; a message Mailpit refuses (HTTP 400, e.g. an
//! address it cannot parse) fails alone, and a server that stops answering
//! or refuses our credentials ends the batch. The account's reply-to
//! address goes in `ReplyTo`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::http::{self, Answer};
use crate::dispatch::provider::{Batch, BatchError, Message, Outcome, Provider};

const NAME: &str = "mailpit";
/// Messages per batch: each is its own request, so keep batches short.
const MAX_BATCH: usize = 50;
/// Every invitation gets this Mailpit tag.
const TAG: &str = "invitation";
/// The header that carries the invitation id.
const ID_HEADER: &str = "X-Invitation-Id";

/// Sends through a Mailpit's HTTP send API.
#[derive(Debug, Clone)]
pub struct Mailpit {
    client: reqwest::Client,
    base_url: String,
    /// Optional basic auth (`user`, `password`).
    auth: Option<(String, String)>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct SendRequest<'a> {
    from: Address<'a>,
    to: [Address<'a>; 1],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    reply_to: Vec<Address<'a>>,
    subject: &'a str,
    text: &'a str,
    #[serde(rename = "HTML")]
    html: &'a str,
    tags: [&'a str; 1],
    headers: BTreeMap<&'a str, &'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Address<'a> {
    email: &'a str,
}

#[derive(Deserialize)]
struct Sent {
    #[serde(rename = "ID")]
    id: String,
}

#[derive(Deserialize)]
struct ErrorAnswer {
    #[serde(rename = "Error")]
    error: String,
}

impl Mailpit {
    pub(super) fn new(
        client: reqwest::Client,
        base_url: String,
        auth: Option<(String, String)>,
    ) -> Self {
        Mailpit {
            client,
            base_url,
            auth,
        }
    }

    /// Sends one message: `Ok` with its outcome (sent, or failed when
    /// Mailpit refuses this message), `Err` when the batch cannot go on.
    async fn send_one(&self, from: &str, message: &Message) -> Result<Outcome, BatchError> {
        let body = SendRequest {
            from: Address { email: from },
            to: [Address { email: &message.to }],
            reply_to: message
                .reply_to
                .iter()
                .map(|email| Address { email })
                .collect(),
            subject: &message.subject,
            text: &message.text,
            html: &message.html,
            tags: [TAG],
            headers: BTreeMap::from([(ID_HEADER, message.invitation_id.as_str())]),
        };
        let mut request = self
            .client
            .post(format!("{}/api/v1/send", self.base_url))
            .json(&body);
        if let Some((user, password)) = &self.auth {
            request = request.basic_auth(user, Some(password));
        }
        let answer = http::send(NAME, request).await?;
        if answer.status.is_success() {
            return sent(&answer);
        }
        let detail = answer.json::<ErrorAnswer>().map(|e| e.error);
        match http::status_error(NAME, &answer, detail.as_deref()) {
            BatchError::Rejected { reason } | BatchError::TooLarge { reason } => {
                Ok(Outcome::Failed { reason })
            }
            error => Err(error),
        }
    }
}

fn sent(answer: &Answer) -> Result<Outcome, BatchError> {
    match answer.json::<Sent>() {
        Some(sent) => Ok(Outcome::Sent {
            message_id: Some(sent.id).filter(|id| !id.is_empty()),
        }),
        None => Err(BatchError::Retry {
            reason: answer.reason(NAME, Some("the answer has no message ID")),
            after: None,
        }),
    }
}

#[async_trait::async_trait]
impl Provider for Mailpit {
    fn name(&self) -> &'static str {
        NAME
    }

    fn max_batch(&self) -> usize {
        MAX_BATCH
    }

    async fn send(&self, batch: Batch<'_>) -> Result<Vec<Outcome>, BatchError> {
        http::check_size(NAME, batch.messages.len(), MAX_BATCH)?;
        let mut outcomes = Vec::with_capacity(batch.messages.len());
        for message in batch.messages {
            match self.send_one(batch.from, message).await {
                Ok(outcome) => outcomes.push(outcome),
                // Nothing went out yet: the whole batch waits (or pauses).
                Err(error) if outcomes.is_empty() => return Err(error),
                Err(error) => {
                    // Some went out: keep their outcomes, and leave this one
                    // and the rest for later rather than hammer a failing server.
                    let (reason, after) = match error {
                        BatchError::Retry { reason, after }
                        | BatchError::Paused { reason, after, .. } => (reason, after),
                        BatchError::Unknown { reason } => {
                            // This one may have gone out; the rest did not.
                            outcomes.push(Outcome::Unknown {
                                reason: reason.clone(),
                            });
                            (reason, None)
                        }
                        BatchError::Rejected { reason } | BatchError::TooLarge { reason } => {
                            (reason, None)
                        }
                    };
                    let rest = batch.messages.len() - outcomes.len();
                    outcomes.extend((0..rest).map(|_| Outcome::Retry {
                        reason: reason.clone(),
                        after,
                    }));
                    break;
                }
            }
        }
        Ok(outcomes)
    }
}
