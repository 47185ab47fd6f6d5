//! The `log` provider: no network, every message logged and marked sent.

use std::io::Write;
use std::sync::{Arc, Mutex};

use bulk_invite::dispatch::provider::Outcome;
use bulk_invite::dispatch::providers::{build, ProviderConfig, ProviderKind};

use crate::{Fixture, TIMEOUT};

/// Collects what the log subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("not poisoned")).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .expect("not poisoned")
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn every_message_is_logged_without_its_body_and_marked_sent_with_its_own_id() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let provider = build(&ProviderConfig {
        kind: ProviderKind::Log,
        base_url: None,
        api_key: None,
        timeout: TIMEOUT,
        postmark_message_stream: "outbound".into(),
    })
    .expect("the log provider builds");
    let fixture = Fixture::with(3);

    let outcomes = provider.send(fixture.batch()).await.expect("sent");

    assert_eq!((provider.name(), provider.max_batch()), ("log", 500));
    let ids: Vec<String> = outcomes
        .iter()
        .map(|o| match o {
            Outcome::Sent {
                message_id: Some(id),
            } => id.clone(),
            other => panic!("expected sent with an id, got {other:?}"),
        })
        .collect();
    assert!(
        ids.iter()
            .all(|id| id.starts_with("log-") && id.len() == 40),
        "{ids:?}"
    );
    assert!(ids[0] != ids[1] && ids[1] != ids[2], "{ids:?}");
    let log = captured.text();
    for m in &fixture.messages {
        assert!(
            log.contains(&m.invitation_id) && log.contains(&m.to),
            "{log}"
        );
        assert!(
            !log.contains("accept/"),
            "the body (with its accept link) stays out of the log: {log}"
        );
    }
}
