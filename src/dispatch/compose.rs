//! The emails of a claimed batch, rendered from what was fixed on its first
//! claim (the time and expiry they state), so every try of the batch, by
//! any worker, sends the same bytes under the same idempotency key.

use super::link::AcceptLink;
use super::provider::Message;
use super::template::{substitutions, EmailValues, Templates};
use super::token::{self, TokenMaker};
use crate::db::dispatch::{AccountContext, BatchContext, Claimed, ImportContext};
use crate::i18n::{self, LanguageTag};
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
    /// `PRODUCT_NAME` ("" for none).
    pub product_name: &'a str,
}

impl Composer<'_> {
    /// When an invitation rendered at `at` expires: after its import's
    /// expiry, or the configured default.
    pub fn expiry(&self, c: &Claimed, context: &BatchContext, at: NaiveDateTime) -> NaiveDateTime {
        let days = context
            .imports
            .get(&c.import_id)
            .and_then(|import| import.expiry_days)
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
        let (no_import, no_account) = (ImportContext::default(), AccountContext::default());
        claimed
            .iter()
            .map(|c| {
                let (Some(sent_at), Some(expires_at)) = (c.rendered_at, c.rendered_expires_at)
                else {
                    anyhow::bail!("invitation {} was claimed without a fixed expiry", c.id);
                };
                let token = self.tokens.token(&c.id, c.token_version);
                let accept_url = self.link.url(&token);
                let import = context.imports.get(&c.import_id).unwrap_or(&no_import);
                let account = context.accounts.get(&c.account_id).unwrap_or(&no_account);
                let locale = self.templates.locale_for(import.locale.as_deref());
                let expires = i18n::format_date(
                    expires_at.date(),
                    date_locale(import.locale.as_deref(), locale),
                );
                // What the first try of the batch said, so retries send the
                // same bytes; the account as it is now for a batch claimed
                // before these were kept.
                let account_name = c.rendered_account_name.as_deref().unwrap_or(&account.name);
                let reply_to = match &c.rendered_account_name {
                    Some(_) => c.rendered_reply_to.clone(),
                    None => account.reply_to.clone(),
                };
                let account_name = match account_name {
                    "" => "your team",
                    name => name,
                };
                // "Join Acme on Acme" says nothing twice over.
                let product_name = match self.product_name {
                    p if p.eq_ignore_ascii_case(account_name) => "",
                    p => p,
                };
                let values = EmailValues {
                    account_name,
                    invited_by: import.invited_by.as_deref().unwrap_or(""),
                    product_name,
                    email: &c.email,
                    accept_url: &accept_url,
                    expires_at: &expires,
                    message: import.message.as_deref().unwrap_or(""),
                };
                let rendered = self
                    .templates
                    .render(locale, &values)
                    .context("rendering an invitation")?;
                let message = Message {
                    invitation_id: c.id.clone(),
                    to: c.email.clone(),
                    subject: rendered.subject,
                    text: rendered.text,
                    html: rendered.html,
                    reply_to,
                    shared: rendered.shared,
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

/// The tag dates are written for: the import's own tag when the templates
/// are of its language (`en-US` writes "December 3, 2026" in the English
/// email), else the templates' locale (no French date in an English email).
fn date_locale<'a>(requested: Option<&'a str>, picked: &'a str) -> &'a str {
    requested
        .and_then(|tag| LanguageTag::parse(tag).ok().map(|t| (tag, t)))
        .filter(|(_, t)| {
            t.language()
                .eq_ignore_ascii_case(picked.split('-').next().unwrap_or(picked))
        })
        .map_or(picked, |(tag, _)| tag)
}

#[cfg(test)]
mod tests {
    use super::date_locale;

    #[test]
    fn dates_follow_the_tag_when_the_templates_are_of_its_language() {
        assert_eq!(date_locale(Some("en-US"), "en"), "en-US");
        assert_eq!(date_locale(Some("de-AT"), "de"), "de-AT");
        assert_eq!(
            date_locale(Some("fr-CA"), "en"),
            "en",
            "no French date in English"
        );
        assert_eq!(date_locale(Some("not a tag"), "en"), "en");
        assert_eq!(date_locale(None, "de"), "de");
    }
}
