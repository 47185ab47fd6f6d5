//! SendGrid: one `POST /v3/mail/send` per batch, with the batch's shared
//! content and one personalization per message (up to 1000) carrying the
//! recipient, the invitation id as a custom arg and the `-name-`
//! substitutions. SendGrid accepts the whole request or nothing: 202 marks
//! every message sent under the request's `X-Message-Id`.
//!
//! A 400 names each bad field, e.g. `{"errors": [{"message": "Does not
//! contain a valid address.", "field": "personalizations.3.to.0.email"}]}`
//! (SendGrid, mail send errors): the recipients it names fail with that
//! message, the others go again at once in a request without them.
//!
//! SendGrid has no idempotency key and no search by our ids: after a
//! timeout the batch is sent again, so it may arrive twice (once at most).
//!
//! The content and the `reply_to` address belong to the whole request
//! (SendGrid refuses `Reply-To` among a personalization's headers), so one
//! request carries only messages that share both: those of the batch's
//! first message. The others are [`Outcome::Unsent`] and go in the next
//! request at once (a batch of one language and account is one request).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::http::{self, Answer};
use crate::dispatch::provider::{Batch, BatchError, Message, Outcome, Provider};

const NAME: &str = "sendgrid";
/// SendGrid's documented limit of personalizations per request.
const MAX_BATCH: usize = 1000;

/// Sends through SendGrid's v3 mail send API.
#[derive(Debug, Clone)]
pub struct Sendgrid {
    client: reqwest::Client,
    base_url: String,
    api_key: String,
}

impl Sendgrid {
    pub(super) fn new(client: reqwest::Client, base_url: String, api_key: String) -> Self {
        Sendgrid {
            client,
            base_url,
            api_key,
        }
    }
}

#[derive(Serialize)]
struct MailSend<'a> {
    personalizations: Vec<Personalization<'a>>,
    from: Address<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reply_to: Option<Address<'a>>,
    subject: &'a str,
    content: [Content<'a>; 2],
}

#[derive(Serialize)]
struct Personalization<'a> {
    to: [Address<'a>; 1],
    custom_args: CustomArgs<'a>,
    substitutions: BTreeMap<String, &'a str>,
}

#[derive(Serialize)]
struct Address<'a> {
    email: &'a str,
}

#[derive(Serialize)]
struct CustomArgs<'a> {
    invitation_id: &'a str,
}

#[derive(Serialize)]
struct Content<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    value: &'a str,
}

impl<'a> Personalization<'a> {
    fn new(message: &'a Message) -> Self {
        Personalization {
            to: [Address { email: &message.to }],
            custom_args: CustomArgs {
                invitation_id: &message.invitation_id,
            },
            substitutions: message
                .substitutions
                .iter()
                .map(|(key, value)| (format!("-{key}-"), value.as_str()))
                .collect(),
        }
    }
}

impl<'a> MailSend<'a> {
    /// The request for `members` (indexes into the batch), which share the
    /// content and reply-to address of the first.
    fn new(batch: &Batch<'a>, members: &[usize]) -> Self {
        let first = &batch.messages[members[0]];
        MailSend {
            personalizations: members
                .iter()
                .map(|i| Personalization::new(&batch.messages[*i]))
                .collect(),
            from: Address { email: batch.from },
            reply_to: first.reply_to.as_deref().map(|email| Address { email }),
            subject: &first.shared.subject,
            content: [
                Content {
                    kind: "text/plain",
                    value: &first.shared.text,
                },
                Content {
                    kind: "text/html",
                    value: &first.shared.html,
                },
            ],
        }
    }
}

/// The messages that can share one request with the first: the same
/// shared content and the same reply-to address.
fn first_group(messages: &[Message]) -> Vec<usize> {
    let Some(first) = messages.first() else {
        return Vec::new();
    };
    (0..messages.len())
        .filter(|i| {
            let m = &messages[*i];
            m.reply_to == first.reply_to
                && (std::sync::Arc::ptr_eq(&m.shared, &first.shared) || m.shared == first.shared)
        })
        .collect()
}

#[derive(Deserialize)]
struct ErrorAnswer {
    #[serde(default)]
    errors: Vec<ErrorItem>,
}

#[derive(Deserialize)]
struct ErrorItem {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    field: Option<String>,
}

/// The personalization a field path like `personalizations.3.to.0.email` names.
fn personalization(field: &str) -> Option<usize> {
    field
        .strip_prefix("personalizations.")?
        .split('.')
        .next()?
        .parse()
        .ok()
}

/// For a 400 that names recipients only: each named one fails with its
/// message, every other one is [`Outcome::Unsent`].
fn bad_recipients(answer: &Answer, count: usize) -> Option<Vec<Outcome>> {
    if answer.status != reqwest::StatusCode::BAD_REQUEST {
        return None;
    }
    let errors = answer.json::<ErrorAnswer>()?.errors;
    let mut outcomes = vec![Outcome::Unsent; count];
    for error in &errors {
        let index = personalization(error.field.as_deref()?).filter(|i| *i < count)?;
        let message = error.message.as_deref().unwrap_or("refused").trim();
        outcomes[index] = Outcome::Failed {
            reason: answer.reason(NAME, Some(message)),
        };
    }
    (!errors.is_empty()).then_some(outcomes)
}

#[async_trait::async_trait]
impl Provider for Sendgrid {
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
        let members = first_group(batch.messages);
        let answered = match self.send_group(&batch, &members).await {
            Ok(answered) => answered,
            // The whole batch went: its error is the batch's.
            Err(error) if members.len() == batch.messages.len() => return Err(error),
            Err(error) => match per_member(error) {
                Ok(outcome) => vec![outcome; members.len()],
                Err(error) => return Err(error),
            },
        };
        let mut outcomes = vec![Outcome::Unsent; batch.messages.len()];
        for (i, outcome) in members.iter().zip(answered) {
            outcomes[*i] = outcome;
        }
        Ok(outcomes)
    }
}

impl Sendgrid {
    /// One request for `members`: an outcome for each of them.
    async fn send_group(
        &self,
        batch: &Batch<'_>,
        members: &[usize],
    ) -> Result<Vec<Outcome>, BatchError> {
        let request = self
            .client
            .post(format!("{}/v3/mail/send", self.base_url))
            .bearer_auth(&self.api_key)
            .json(&MailSend::new(batch, members));
        let answer = http::send(NAME, request).await?;
        if let Some(outcomes) = bad_recipients(&answer, members.len()) {
            return Ok(outcomes);
        }
        if !answer.status.is_success() {
            return Err(http::status_error(
                NAME,
                &answer,
                error_messages(&answer).as_deref(),
            ));
        }
        let message_id = answer
            .headers
            .get("x-message-id")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .map(str::to_owned);
        Ok(members
            .iter()
            .map(|_| Outcome::Sent {
                message_id: message_id.clone(),
            })
            .collect())
    }
}

/// What a request's error means for each message it carried, when the
/// batch held others too (they were not tried); a pause or a request too
/// large stays the batch's.
fn per_member(error: BatchError) -> Result<Outcome, BatchError> {
    match error {
        BatchError::Retry { reason, after } => Ok(Outcome::Retry { reason, after }),
        BatchError::Unknown { reason } => Ok(Outcome::Unknown { reason }),
        BatchError::Rejected { reason } => Ok(Outcome::Failed { reason }),
        other => Err(other),
    }
}

/// SendGrid's `errors[].message` texts, joined.
fn error_messages(answer: &Answer) -> Option<String> {
    let messages: Vec<String> = answer
        .json::<ErrorAnswer>()?
        .errors
        .into_iter()
        .filter_map(|e| e.message)
        .map(|m| m.trim().to_owned())
        .filter(|m| !m.is_empty())
        .collect();
    (!messages.is_empty()).then(|| messages.join("; "))
}
