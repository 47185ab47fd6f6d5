//! The parts of a step that touch one batch: fixing what its emails say,
//! looking up an earlier try, sending what is left, recording outcomes.

use super::Dispatcher;
use crate::db::dispatch::{self as queue, BatchContext, Claimed};
use crate::db::now;
use crate::dispatch::compose::Sealed;
use crate::dispatch::pace::Pace;
use crate::dispatch::provider::{Batch, BatchError, Message, Outcome};

impl Dispatcher {
    /// Fixes the time, expiry, account name and reply-to of the members
    /// claimed for the first time.
    pub(super) async fn seal(
        &self,
        claimed: &mut [Claimed],
        context: &BatchContext,
    ) -> anyhow::Result<()> {
        let at = now();
        let composer = self.composer();
        let mut rows = Vec::new();
        for c in claimed
            .iter_mut()
            .filter(|c| c.rendered_expires_at.is_none())
        {
            let expires = composer.expiry(c, context, at);
            let account = context.accounts.get(&c.account_id);
            let account_name = account.map(|a| a.name.clone()).unwrap_or_default();
            let reply_to = account.and_then(|a| a.reply_to.clone());
            c.rendered_at = Some(at);
            c.rendered_expires_at = Some(expires);
            c.rendered_account_name = Some(account_name.clone());
            c.rendered_reply_to = reply_to.clone();
            rows.push(queue::Seal {
                id: c.id.clone(),
                rendered_at: at,
                expires_at: expires,
                account_name,
                reply_to,
            });
        }
        if rows.is_empty() {
            return Ok(());
        }
        let owner = self.owner.clone();
        self.db(move |conn| Ok(queue::seal(conn, &owner, &rows)?))
            .await
    }

    /// Asks the provider what it already accepted of this batch; those are
    /// sent, the others are known not to be.
    pub(super) async fn settle_earlier_try(
        &self,
        claimed: &mut [Claimed],
        messages: &[Message],
        outcomes: &mut [Option<Outcome>],
    ) {
        let batch_id = claimed[0].batch_id.clone();
        let all: Vec<&Claimed> = claimed.iter().collect();
        let key = self.composer().idempotency_key(&batch_id, &all);
        let found = self
            .provider
            .accepted(self.batch(messages, &key, &batch_id))
            .await;
        match found {
            Ok(found) => {
                for ((c, outcome), id) in claimed.iter_mut().zip(outcomes.iter_mut()).zip(found) {
                    match id {
                        Some(id) => {
                            *outcome = Some(Outcome::Sent {
                                message_id: Some(id),
                            })
                        }
                        None => c.maybe_sent = false,
                    }
                }
                let settled = outcomes.iter().filter(|o| o.is_some()).count();
                tracing::info!(
                    provider = self.provider.name(),
                    settled,
                    "an earlier try of this batch was looked up"
                );
            }
            Err(error) => {
                tracing::warn!(provider = self.provider.name(), %error, "could not look up an earlier try; the batch waits");
                for outcome in outcomes.iter_mut() {
                    *outcome = Some(Outcome::Unknown {
                        reason: error.to_string(),
                    });
                }
            }
        }
    }

    /// Sends the `pending` members of the batch as one request.
    pub(super) async fn send(
        &self,
        pace: &mut Pace,
        claimed: &[Claimed],
        messages: &[Message],
        pending: &[usize],
    ) -> Result<Vec<Outcome>, BatchError> {
        let members: Vec<&Claimed> = pending.iter().map(|i| &claimed[*i]).collect();
        let to_send: Vec<Message> = pending.iter().map(|i| messages[*i].clone()).collect();
        let batch_id = &claimed[0].batch_id;
        let key = self.composer().idempotency_key(batch_id, &members);
        tokio::time::sleep(pace.reserve(to_send.len())).await;
        self.provider
            .send(self.batch(&to_send, &key, batch_id))
            .await
    }

    fn batch<'a>(&'a self, messages: &'a [Message], key: &'a str, batch_id: &'a str) -> Batch<'a> {
        Batch {
            from: &self.config.email_from,
            messages,
            idempotency_key: key,
            batch_id,
        }
    }

    /// Writes what each member came to; members without an outcome, or
    /// [`Outcome::Unsent`], are given back without counting the attempt.
    pub(super) async fn record(
        &self,
        claimed: &[Claimed],
        outcomes: Vec<Option<Outcome>>,
        sealed: &[Sealed],
    ) -> anyhow::Result<()> {
        let rules = self.rules();
        let now = now();
        let mut records = Vec::new();
        let mut unsent = Vec::new();
        for ((c, outcome), sealed) in claimed.iter().zip(outcomes).zip(sealed) {
            match outcome.and_then(|o| rules.record(c, o, sealed, now)) {
                Some(record) => records.push((c.clone(), record)),
                None => unsent.push(c.id.clone()),
            }
        }
        let owner = self.owner.clone();
        self.db(move |conn| {
            if !records.is_empty() {
                queue::record(conn, &records, now)?;
            }
            if !unsent.is_empty() {
                queue::release(conn, &owner, &unsent)?;
            }
            Ok(())
        })
        .await
    }
}
