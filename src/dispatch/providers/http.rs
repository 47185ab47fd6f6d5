//! HTTP plumbing the provider adapters share: the client, sending a request
//! and reading its answer in full, and turning a transport error or a
//! non-success answer into a [`BatchError`] that carries the wait the
//! provider asked for (`Retry-After` or a rate-limit reset header).

use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;
use reqwest::{RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;

use super::hints;
use crate::dispatch::provider::{BatchError, PauseCause};

/// How much of an unparsed answer body goes into a reason.
const EXCERPT_CHARS: usize = 200;
/// Statuses that say our credentials or our base URL are wrong, not the
/// batch: sending pauses until someone fixes the configuration.
const CONFIG_STATUSES: [StatusCode; 4] = [
    StatusCode::UNAUTHORIZED,
    StatusCode::FORBIDDEN,
    StatusCode::NOT_FOUND,
    StatusCode::METHOD_NOT_ALLOWED,
];

/// The client one adapter uses for all its requests: `timeout` bounds both
/// connecting and the whole request.
pub(crate) fn client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("bulk-invite/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// A provider's answer, read in full.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    /// The body as `T`, or `None` when it is not that JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Option<T> {
        serde_json::from_str(&self.body).ok()
    }

    /// The start of the body on one line, for reasons and logs.
    pub fn excerpt(&self) -> String {
        let flat = self.body.split_whitespace().collect::<Vec<_>>().join(" ");
        match flat.char_indices().nth(EXCERPT_CHARS) {
            Some((cut, _)) => format!("{}...", &flat[..cut]),
            None => flat,
        }
    }

    /// `"<provider> answered <status>: <detail or body excerpt>"`.
    pub fn reason(&self, provider: &str, detail: Option<&str>) -> String {
        let text = detail
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(str::to_owned)
            .unwrap_or_else(|| self.excerpt());
        if text.is_empty() {
            format!("{provider} answered {}", self.status)
        } else {
            format!("{provider} answered {}: {text}", self.status)
        }
    }

    /// How long the provider asked us to wait, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        hints::retry_after(&self.headers, SystemTime::now())
    }
}

/// Sends `request` and reads the whole answer, whatever its status.
pub(crate) async fn send(provider: &str, request: RequestBuilder) -> Result<Answer, BatchError> {
    let response = request
        .send()
        .await
        .map_err(|e| transport_error(provider, &e))?;
    let status = response.status();
    let headers = response.headers().clone();
    // The provider answered, so it read the request: a body lost now
    // leaves us not knowing what it accepted.
    let body = response.text().await.map_err(|e| BatchError::Unknown {
        reason: format!(
            "{provider}: the answer ({status}) was cut off: {}",
            error_chain(&e)
        ),
    })?;
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// A request that got no answer. One that never connected was not sent:
/// retry it. A timeout or a connection lost afterwards may have come after
/// the provider accepted the request: the outcome is unknown. A request
/// that could not even be built is a configuration problem: sending pauses.
pub(crate) fn transport_error(provider: &str, error: &reqwest::Error) -> BatchError {
    let chain = error_chain(error);
    if error.is_builder() {
        return BatchError::Paused {
            reason: format!("{provider}: could not build the request: {chain}"),
            cause: PauseCause::Configuration,
            after: None,
        };
    }
    if error.is_connect() {
        return BatchError::Retry {
            reason: format!("{provider}: could not connect: {chain}"),
            after: None,
        };
    }
    let what = if error.is_timeout() {
        "request timed out"
    } else {
        "request failed"
    };
    BatchError::Unknown {
        reason: format!("{provider}: {what}, it may have been accepted: {chain}"),
    }
}

/// A batch larger than the provider takes is the dispatcher's bug, not the
/// messages' fault: sending pauses (nothing is lost) and the reason says so.
pub(crate) fn check_size(provider: &str, len: usize, max: usize) -> Result<(), BatchError> {
    if len <= max {
        return Ok(());
    }
    Err(BatchError::Paused {
        reason: format!("{provider}: a batch of {len} messages exceeds the limit of {max}"),
        cause: PauseCause::Configuration,
        after: None,
    })
}

/// The usual meaning of a non-success answer: 429 pauses sending for the
/// wait the provider asked for (no attempt is counted); 408 and 5xx are
/// retried; 413 splits the batch; 401/403 pause sending, and so do 404/405
/// and anything outside 4xx/5xx (an unfollowed redirect), which mean the
/// base URL is wrong; any other 4xx rejects the batch. `detail` is the
/// provider's own error message when the adapter could read one.
pub(crate) fn status_error(provider: &str, answer: &Answer, detail: Option<&str>) -> BatchError {
    let reason = answer.reason(provider, detail);
    let status = answer.status;
    if status == StatusCode::TOO_MANY_REQUESTS {
        BatchError::Paused {
            reason,
            cause: PauseCause::RateLimit,
            after: answer.retry_after(),
        }
    } else if status == StatusCode::REQUEST_TIMEOUT || status.is_server_error() {
        BatchError::Retry {
            reason,
            after: answer.retry_after(),
        }
    } else if status == StatusCode::PAYLOAD_TOO_LARGE {
        BatchError::TooLarge { reason }
    } else if status.is_client_error() && !CONFIG_STATUSES.contains(&status) {
        BatchError::Rejected { reason }
    } else {
        configuration(reason)
    }
}

/// A pause until someone fixes the configuration (retried every
/// `DISPATCH_PAUSE_SECS`).
pub(crate) fn configuration(reason: String) -> BatchError {
    BatchError::Paused {
        reason,
        cause: PauseCause::Configuration,
        after: None,
    }
}

fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::providers::hints::tests::headers;

    #[test]
    fn statuses_map_to_retry_pause_or_reject() {
        let cases: [(&[u16], &str); 5] = [
            (&[408, 500, 503], "retry"),
            (&[429], "slow down"),
            (&[401, 403, 404, 405, 304], "paused"),
            (&[413], "split"),
            (&[400, 409, 422], "rejected"),
        ];
        let cases = cases
            .into_iter()
            .flat_map(|(codes, kind)| codes.iter().map(move |code| (*code, kind)));
        for (code, expected) in cases {
            let answer = Answer {
                status: StatusCode::from_u16(code).unwrap_or(StatusCode::IM_A_TEAPOT),
                headers: headers(&[("retry-after", "2")]),
                body: "{\"message\": \"nope\"}".into(),
            };
            let kind = match status_error("fake", &answer, None) {
                BatchError::Retry { after, .. } => {
                    assert_eq!(after, Some(Duration::from_secs(2)), "{code}");
                    "retry"
                }
                BatchError::Paused {
                    cause: PauseCause::RateLimit,
                    after,
                    ..
                } => {
                    assert_eq!(after, Some(Duration::from_secs(2)), "{code}");
                    "slow down"
                }
                BatchError::Paused { .. } => "paused",
                BatchError::TooLarge { .. } => "split",
                BatchError::Rejected { .. } => "rejected",
                BatchError::Unknown { .. } => "unknown",
            };
            assert_eq!(kind, expected, "{code}");
        }
    }

    #[test]
    fn a_reason_names_the_status_and_prefers_the_providers_message() {
        let answer = Answer {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            headers: HeaderMap::new(),
            body: format!("{{\"a\":\n \"{}\"}}", "x".repeat(300)),
        };
        assert_eq!(
            answer.reason("postmark", Some(" Invalid 'To' ")),
            "postmark answered 422 Unprocessable Entity: Invalid 'To'"
        );
        let excerpt = answer.reason("postmark", None);
        assert!(excerpt.starts_with("postmark answered 422 Unprocessable Entity: {\"a\": \"xxx"));
        assert!(excerpt.ends_with("..."), "{excerpt}");
        assert!(excerpt.len() < 260, "{excerpt}");
    }
}
