//! The options an administrator may give an import: a message for the
//! email, how long its invitations last, where to send people after they
//! accept, who invited them and the language of the email.

use super::name::{DisplayName, NameError, MAX_NAME_CHARS};
use crate::i18n::LanguageTag;

/// Checked import options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// Shown in the invitation email (at most [`MAX_MESSAGE_CHARS`] characters).
    pub message: Option<String>,
    /// Days the invitations stay valid once sent, 1 to 30.
    pub expires_in_days: Option<i32>,
    /// Where the accept step sends the person next (an allowed origin).
    pub redirect_url: Option<String>,
    /// Who invited them: a person's name, shown in the subject and first line.
    pub invited_by: Option<String>,
    /// The language of the email (its templates fall back along the tag).
    pub locale: Option<LanguageTag>,
}

/// The longest message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 2_000;

/// An option that cannot be used; the message names the option.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionError {
    #[error("message holds a control character (only tabs and line breaks are allowed)")]
    MessageControlCharacter,
    #[error("expires_in_days must be a whole number from 1 to 30, not {0:?}")]
    BadExpiry(String),
    #[error("redirect_url must be an absolute http or https URL, not {0:?}")]
    BadRedirect(String),
    #[error("redirect_url's origin {0} is not one of the allowed redirect origins (ALLOWED_REDIRECT_ORIGINS)")]
    OriginNotAllowed(String),
    #[error("invited_by {0} (a person's name of at most {MAX_NAME_CHARS} characters)")]
    BadInvitedBy(NameError),
    #[error("locale must be a language tag like `en`, `de` or `fr-CA` (BCP 47), not {0:?}")]
    BadLocale(String),
    #[error("{name} is longer than {max} characters (spaces around it count too)")]
    TooLong { name: &'static str, max: usize },
}

/// The raw values of an import's options, as the form or query gave them.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawOptions<'a> {
    pub message: Option<&'a str>,
    pub expires_in_days: Option<&'a str>,
    pub redirect_url: Option<&'a str>,
    pub invited_by: Option<&'a str>,
    pub locale: Option<&'a str>,
}

impl ImportOptions {
    /// Checks the raw values (blank means absent). `allowed_origins` are
    /// origins like `https://app.example.com`.
    pub fn parse(
        raw: RawOptions<'_>,
        allowed_origins: &[String],
    ) -> Result<ImportOptions, OptionError> {
        let RawOptions {
            message,
            expires_in_days,
            redirect_url,
            invited_by,
            locale,
        } = raw;
        // As sent, before trimming: what the schema's maxLength measures.
        for (name, value, max) in [
            ("message", message, MAX_MESSAGE_CHARS),
            ("invited_by", invited_by, MAX_NAME_CHARS),
            ("locale", locale, crate::i18n::MAX_TAG_CHARS),
        ] {
            if value.is_some_and(|v| v.chars().count() > max) {
                return Err(OptionError::TooLong { name, max });
            }
        }
        let message = present(message).map(str::to_owned);
        if message.as_ref().is_some_and(|m| {
            m.chars()
                .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
        }) {
            return Err(OptionError::MessageControlCharacter);
        }
        let expires_in_days = present(expires_in_days)
            .map(|days| {
                days.parse::<i32>()
                    .ok()
                    .filter(|d| (1..=30).contains(d))
                    .ok_or_else(|| OptionError::BadExpiry(days.to_owned()))
            })
            .transpose()?;
        let redirect_url = present(redirect_url)
            .map(|raw| check_redirect(raw, allowed_origins))
            .transpose()?;
        let invited_by = present(invited_by)
            .map(|name| DisplayName::parse(name).map(DisplayName::into_string))
            .transpose()
            .map_err(OptionError::BadInvitedBy)?;
        let locale = present(locale)
            .map(|tag| LanguageTag::parse(tag).map_err(|_| OptionError::BadLocale(tag.to_owned())))
            .transpose()?;
        Ok(ImportOptions {
            message,
            expires_in_days,
            redirect_url,
            invited_by,
            locale,
        })
    }
}

/// A value that is there and not blank, trimmed.
fn present(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

fn check_redirect(raw: &str, allowed_origins: &[String]) -> Result<String, OptionError> {
    let url = url::Url::parse(raw).map_err(|_| OptionError::BadRedirect(raw.to_owned()))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(OptionError::BadRedirect(raw.to_owned()));
    }
    let origin = url.origin().ascii_serialization();
    let allowed = allowed_origins.iter().any(|allowed| {
        url::Url::parse(allowed.trim()).is_ok_and(|a| a.origin().ascii_serialization() == origin)
    });
    if !allowed {
        return Err(OptionError::OriginNotAllowed(origin));
    }
    Ok(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed() -> Vec<String> {
        vec![
            "https://app.example.com".into(),
            "http://localhost:3000".into(),
        ]
    }

    #[test]
    fn good_options_are_kept_and_blank_ones_are_absent() {
        let options = ImportOptions::parse(
            RawOptions {
                message: Some("  Welcome!  "),
                expires_in_days: Some("14"),
                redirect_url: Some("https://app.example.com/welcome?x=1"),
                invited_by: Some("  Ann Lee "),
                locale: Some("fr-ca"),
            },
            &allowed(),
        )
        .unwrap();
        assert_eq!(options.invited_by.as_deref(), Some("Ann Lee"));
        assert_eq!(options.locale.as_ref().map(|l| l.as_str()), Some("fr-CA"));
        assert_eq!(options.message.as_deref(), Some("Welcome!"));
        assert_eq!(options.expires_in_days, Some(14));
        assert_eq!(
            options.redirect_url.as_deref(),
            Some("https://app.example.com/welcome?x=1")
        );
        let blank = RawOptions {
            message: Some(" "),
            expires_in_days: Some(""),
            invited_by: Some("  "),
            locale: Some(""),
            ..RawOptions::default()
        };
        assert_eq!(
            ImportOptions::parse(blank, &[]).unwrap(),
            ImportOptions::default()
        );
    }

    #[test]
    fn bad_options_are_refused_with_the_option_named() {
        let long = "x".repeat(MAX_MESSAGE_CHARS + 1);
        /// message, expires_in_days, redirect_url, and the refusal.
        type Case<'a> = (
            Option<&'a str>,
            Option<&'a str>,
            Option<&'a str>,
            OptionError,
        );
        let cases: [Case<'_>; 9] = [
            (
                Some(&long),
                None,
                None,
                OptionError::TooLong {
                    name: "message",
                    max: MAX_MESSAGE_CHARS,
                },
            ),
            (
                Some("hi\0there"),
                None,
                None,
                OptionError::MessageControlCharacter,
            ),
            (
                Some("bell\u{7}"),
                None,
                None,
                OptionError::MessageControlCharacter,
            ),
            (None, Some("0"), None, OptionError::BadExpiry("0".into())),
            (None, Some("31"), None, OptionError::BadExpiry("31".into())),
            (
                None,
                Some("7.5"),
                None,
                OptionError::BadExpiry("7.5".into()),
            ),
            (
                None,
                None,
                Some("/relative"),
                OptionError::BadRedirect("/relative".into()),
            ),
            (
                None,
                None,
                Some("javascript:alert(1)"),
                OptionError::BadRedirect("javascript:alert(1)".into()),
            ),
            (
                None,
                None,
                Some("https://evil.test/x"),
                OptionError::OriginNotAllowed("https://evil.test".into()),
            ),
        ];
        for (message, expires_in_days, redirect_url, want) in cases {
            let raw = RawOptions {
                message,
                expires_in_days,
                redirect_url,
                ..RawOptions::default()
            };
            assert_eq!(ImportOptions::parse(raw, &allowed()), Err(want));
        }
        let other_port = RawOptions {
            redirect_url: Some("http://localhost:3001/"),
            ..RawOptions::default()
        };
        assert!(matches!(
            ImportOptions::parse(other_port, &allowed()),
            Err(OptionError::OriginNotAllowed(_))
        ));
    }

    #[test]
    fn a_bad_inviter_or_locale_is_refused_with_the_option_named() {
        let long = "x".repeat(MAX_NAME_CHARS + 1);
        let cases = [
            (Some(long.as_str()), None, "invited_by is longer than 100"),
            (
                Some("Ann\nLee"),
                None,
                "invited_by holds a control character",
            ),
            (None, Some("english"), "locale must be a language tag"),
            (None, Some("en_GB!"), "locale must be a language tag"),
        ];
        for (invited_by, locale, want) in cases {
            let raw = RawOptions {
                invited_by,
                locale,
                ..RawOptions::default()
            };
            let error = ImportOptions::parse(raw, &allowed()).unwrap_err();
            assert!(error.to_string().starts_with(want), "{error}");
        }
    }
}
