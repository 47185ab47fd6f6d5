//! The `log` provider: sends nothing, writes each invitation to the log and
//! marks it sent, so the service runs with no email account anywhere.

use uuid::Uuid;

use crate::dispatch::provider::{Batch, BatchError, Message, Outcome, Provider};

/// The most messages one batch takes.
const MAX_BATCH: usize = 500;

/// Logs invitations instead of sending them.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogProvider;

impl LogProvider {
    /// A log provider.
    pub fn new() -> Self {
        LogProvider
    }

    fn log(message: &Message) -> Outcome {
        let message_id = format!("log-{}", Uuid::new_v4());
        // The body is left out: it holds the accept link, a credential. The
        // link alone is logged at debug level, for trying the accept flow
        // locally (`RUST_LOG=bulk_invite=debug`).
        if let Some(link) = message.substitutions.get("accept_url") {
            tracing::debug!(invitation_id = %message.invitation_id, accept_url = %link, "accept link");
        }
        tracing::info!(
            invitation_id = %message.invitation_id,
            to = %message.to,
            subject = %message.subject,
            message_id = %message_id,
            "invitation email (log provider, not sent)"
        );
        Outcome::Sent {
            message_id: Some(message_id),
        }
    }
}

#[async_trait::async_trait]
impl Provider for LogProvider {
    fn name(&self) -> &'static str {
        "log"
    }

    fn max_batch(&self) -> usize {
        MAX_BATCH
    }

    async fn send(&self, batch: Batch<'_>) -> Result<Vec<Outcome>, BatchError> {
        Ok(batch.messages.iter().map(Self::log).collect())
    }
}
