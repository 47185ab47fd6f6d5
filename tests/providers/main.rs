//! The email provider adapters against local fake providers (wiremock on
//! 127.0.0.1): the exact request each one sends, and what each kind of
//! answer becomes.

mod log;
mod mailpit;
mod postmark;
mod reply_to;
mod resend;
mod sendgrid;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bulk_invite::dispatch::provider::{
    Batch, BatchError, Message, Outcome, PauseCause, Provider, SharedContent,
};
use bulk_invite::dispatch::providers::{build, ProviderConfig, ProviderKind};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

/// The sender of every test batch.
pub const FROM: &str = "invites@acme.test";
/// The idempotency key of every test batch.
pub const IDEMPOTENCY_KEY: &str = "batch-0193a1b2-7c1e";
/// The batch id of every test batch.
pub const BATCH_ID: &str = "batch-0193a1b2";
/// The client timeout: short, so a hung provider costs little test time.
pub const TIMEOUT: Duration = Duration::from_millis(300);

/// The content every test message shares, with `-name-` and `-link-`.
pub fn shared_content() -> SharedContent {
    SharedContent {
        subject: "You are invited to Acme".into(),
        text: "Hello -name-, accept: -link-".into(),
        html: "<p>Hello -name-, <a href=\"-link-\">accept</a></p>".into(),
    }
}

/// One rendered invitation, numbered so each message differs.
pub fn message(n: usize) -> Message {
    message_sharing(n, Arc::new(shared_content()))
}

/// One rendered invitation whose shared content is `shared`.
pub fn message_sharing(n: usize, shared: Arc<SharedContent>) -> Message {
    let link = format!("https://invite.test/accept/{n}");
    let name = format!("Person {n}");
    Message {
        invitation_id: format!("inv-{n}"),
        to: format!("person{n}@example.com"),
        subject: "You are invited to Acme".into(),
        text: format!("Hello {name}, accept: {link}"),
        html: format!("<p>Hello {name}, <a href=\"{link}\">accept</a></p>"),
        reply_to: None,
        shared,
        substitutions: BTreeMap::from([("link".into(), link), ("name".into(), name)]),
    }
}

/// The messages and shared content a [`Batch`] borrows.
pub struct Fixture {
    pub messages: Vec<Message>,
    pub shared: SharedContent,
}

impl Fixture {
    /// `count` messages, numbered from 1.
    pub fn with(count: usize) -> Fixture {
        let shared = Arc::new(shared_content());
        Fixture {
            messages: (1..=count)
                .map(|n| message_sharing(n, shared.clone()))
                .collect(),
            shared: shared_content(),
        }
    }

    /// The batch of all the messages.
    pub fn batch(&self) -> Batch<'_> {
        Batch {
            from: FROM,
            messages: &self.messages,
            idempotency_key: IDEMPOTENCY_KEY,
            batch_id: BATCH_ID,
        }
    }
}

/// The adapter `kind`, pointed at `server`.
pub fn provider(
    kind: ProviderKind,
    server: &MockServer,
    api_key: Option<&str>,
) -> Arc<dyn Provider> {
    build(&ProviderConfig {
        kind,
        base_url: Some(server.uri()),
        api_key: api_key.map(str::to_owned),
        timeout: TIMEOUT,
        postmark_message_stream: "outbound".into(),
    })
    .expect("the provider builds")
}

/// Makes `server` answer every request with `response`.
pub async fn answer_all(server: &MockServer, response: ResponseTemplate) {
    Mock::given(any())
        .respond_with(response)
        .mount(server)
        .await;
}

/// Sends a batch of `count` messages through `kind` to a fresh server that
/// answers `response`.
pub async fn send_against(
    kind: ProviderKind,
    api_key: Option<&str>,
    count: usize,
    response: ResponseTemplate,
) -> Result<Vec<Outcome>, BatchError> {
    let server = MockServer::start().await;
    answer_all(&server, response).await;
    let fixture = Fixture::with(count);
    provider(kind, &server, api_key).send(fixture.batch()).await
}

/// Every request `server` received.
pub async fn requests(server: &MockServer) -> Vec<Request> {
    server
        .received_requests()
        .await
        .expect("request recording is on")
}

/// A request's body as JSON.
pub fn json(request: &Request) -> serde_json::Value {
    request.body_json().expect("the request body is JSON")
}

/// A request header's value, `""` when absent.
pub fn header<'r>(request: &'r Request, name: &str) -> &'r str {
    request
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// What a whole batch came to, in a shape a table can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Retry(Option<Duration>),
    /// The outcome is unknown: the request may have been accepted.
    Unknown,
    /// Dispatch pauses for this cause, for the wait the provider gave.
    Paused(PauseCause, Option<Duration>),
    Rejected,
    TooLarge,
}

/// Dispatch pauses until someone fixes the configuration.
pub const CONFIG: Expect = Expect::Paused(PauseCause::Configuration, None);

/// Checks that `result` is the batch error `expected` and that its reason
/// mentions `mention`.
pub fn assert_batch_error(
    case: &str,
    result: Result<Vec<Outcome>, BatchError>,
    expected: Expect,
    mention: &str,
) {
    let error = match result {
        Ok(outcomes) => panic!("{case}: expected {expected:?}, got outcomes {outcomes:?}"),
        Err(error) => error,
    };
    let got = match &error {
        BatchError::Retry { after, .. } => Expect::Retry(*after),
        BatchError::Unknown { .. } => Expect::Unknown,
        BatchError::Paused { cause, after, .. } => Expect::Paused(*cause, *after),
        BatchError::Rejected { .. } => Expect::Rejected,
        BatchError::TooLarge { .. } => Expect::TooLarge,
    };
    assert_eq!(got, expected, "{case}: {error}");
    assert!(
        error.to_string().contains(mention),
        "{case}: {error:?} should mention {mention:?}"
    );
}

/// A provider that does not answer within the timeout leaves the outcome
/// unknown (it may have accepted the batch), and the wait is bounded.
pub async fn assert_a_hung_provider_is_retried(kind: ProviderKind, api_key: Option<&str>) {
    let hung = ResponseTemplate::new(200).set_delay(TIMEOUT * 5);
    let started = std::time::Instant::now();
    let result = send_against(kind, api_key, 1, hung).await;
    assert_batch_error(kind.as_str(), result, Expect::Unknown, "timed out");
    assert!(
        started.elapsed() < TIMEOUT * 4,
        "the client timeout bounds the wait"
    );
}

/// `Some(d)` for a whole number of seconds, to keep tables short.
pub fn secs(seconds: u64) -> Option<Duration> {
    Some(Duration::from_secs(seconds))
}
