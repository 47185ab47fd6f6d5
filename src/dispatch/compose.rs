//! The emails of a claimed batch, rendered from what was fixed on its first
//! claim (the time and expiry they state), so every try of the batch, by
//! any worker, sends the same bytes under the same idempotency key.

use super::link::AcceptLink;
use super::provider::Message;
use super::template::{substitutions, EmailValues, Templates};
use super::token::{self, TokenMaker};
use crate::db::dispatch::{BatchContext, Claimed};
use anyhow::Context;
use chrono::NaiveDateTime;

/// What an invitation's record holds once its email is sent: the hash of
/// the token in its link, when it was first sent (the time the email was
/// rendered for), and the expiry its email states.
#[derive(Debug, Clone)]
pub struct Sealed {
    pub token_hash: String,
    pub sent_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

/// Renders invitation emails.
pub struct Composer<'a> {
    pub templates: &'a Templates,
    pub tokens: &'a TokenMaker,
    /// Where the link in each email points.
    pub link: &'a AcceptLink,
    pub default_ttl_days: i64,
}

impl Composer<'_> {
    /// When an invitation rendered at `at` expires: after its import's
    /// expiry, or the configured default.
    pub fn expiry(&self, c: &Claimed, context: &BatchContext, at: NaiveDateTime) -> NaiveDateTime {
        let days = context
            .imports
            .get(&c.import_id)
            .and_then(|(_, days)| *days)
            .map_or(self.default_ttl_days, i64::from);
        chrono::Duration::try_days(days)
            .and_then(|days| at.checked_add_signed(days))
            .unwrap_or(NaiveDateTime::MAX)
    }

    /// The email of each claimed invitation (whose expiry is fixed), and
    /// what its record keeps once it is sent.
    pub fn render(
        &self,
        claimed: &[Claimed],
        context: &BatchContext,
    ) -> anyhow::Result<(Vec<Message>, Vec<Sealed>)> {
        claimed
            .iter()
            .map(|c| {
                let (Some(sent_at), Some(expires_at)) = (c.rendered_at, c.rendered_expires_at)
                else {
                    anyhow::bail!("invitation {} was claimed without a fixed expiry", c.id);
                };
                let token = self.tokens.token(&c.id, c.token_version);
                let accept_url = self.link.url(&token);
                let expires = expires_at.format("%Y-%m-%d %H:%M UTC").to_string();
                let message = context
                    .imports
                    .get(&c.import_id)
                    .and_then(|(m, _)| m.as_deref());
                let values = EmailValues {
                    account_name: context
                        .account_names
                        .get(&c.account_id)
                        .map_or("your team", String::as_str),
                    email: &c.email,
                    accept_url: &accept_url,
                    expires_at: &expires,
                    message: message.unwrap_or(""),
                };
                let rendered = self
                    .templates
                    .render(&values)
                    .context("rendering an invitation")?;
                let message = Message {
                    invitation_id: c.id.clone(),
                    to: c.email.clone(),
                    subject: rendered.subject,
                    text: rendered.text,
                    html: rendered.html,
                    substitutions: substitutions(&values),
                };
                let sealed = Sealed {
                    token_hash: token::hash(&token),
                    sent_at,
                    expires_at,
                };
                Ok((message, sealed))
            })
            .collect()
    }

    /// The same for every try of the same members (same secret), so a
    /// provider that honours it sends them once.
    pub fn idempotency_key(&self, batch_id: &str, members: &[&Claimed]) -> String {
        use sha2::{Digest, Sha256};
        let mut hash = Sha256::new();
        hash.update(self.tokens.fingerprint());
        for c in members {
            hash.update(c.id.as_bytes());
            hash.update(c.token_version.to_le_bytes());
        }
        format!("{batch_id}-{}", &hex::encode(hash.finalize())[..16])
    }
}
