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
    fn new(batch: &Batch<'a>) -> Self {
        MailSend {
            personalizations: batch.messages.iter().map(Personalization::new).collect(),
            from: Address { email: batch.from },
            subject: &batch.shared.subject,
            content: [
                Content {
                    kind: "text/plain",
                    value: &batch.shared.text,
                },
                Content {
                    kind: "text/html",
                    value: &batch.shared.html,
                },
            ],
        }
    }
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
        let request = self
            .client
            .post(format!("{}/v3/mail/send", self.base_url))
            .bearer_auth(&self.api_key)
            .json(&MailSend::new(&batch));
        let answer = http::send(NAME, request).await?;
        if let Some(outcomes) = bad_recipients(&answer, batch.messages.len()) {
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
        Ok(batch
            .messages
            .iter()
            .map(|_| Outcome::Sent {
                message_id: message_id.clone(),
            })
            .collect())
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
