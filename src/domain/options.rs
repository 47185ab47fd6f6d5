//! The options an administrator may give an import: a message for the
//! email, how long its invitations last, and where to send people after
//! they accept.

/// Checked import options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// Shown in the invitation email (at most [`MAX_MESSAGE_CHARS`] characters).
    pub message: Option<String>,
    /// Days the invitations stay valid once sent, 1 to 30.
    pub expires_in_days: Option<i32>,
    /// Where the accept step sends the person next (an allowed origin).
    pub redirect_url: Option<String>,
}

/// The longest message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 2_000;

/// An option that cannot be used; the message names the option.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionError {
    #[error("message is longer than {MAX_MESSAGE_CHARS} characters")]
    MessageTooLong,
    #[error("message holds a control character (only tabs and line breaks are allowed)")]
    MessageControlCharacter,
    #[error("expires_in_days must be a whole number from 1 to 30, not {0:?}")]
    BadExpiry(String),
    #[error("redirect_url must be an absolute http or https URL, not {0:?}")]
    BadRedirect(String),
    #[error("redirect_url's origin {0} is not one of the allowed redirect origins (ALLOWED_REDIRECT_ORIGINS)")]
    OriginNotAllowed(String),
}

impl ImportOptions {
    /// Checks the raw values (blank means absent). `allowed_origins` are
    /// origins like `https://app.example.com`.
    pub fn parse(
        message: Option<&str>,
        expires_in_days: Option<&str>,
        redirect_url: Option<&str>,
        allowed_origins: &[String],
    ) -> Result<ImportOptions, OptionError> {
        let message = present(message).map(str::to_owned);
        if message
            .as_ref()
            .is_some_and(|m| m.chars().count() > MAX_MESSAGE_CHARS)
        {
            return Err(OptionError::MessageTooLong);
        }
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
        Ok(ImportOptions {
            message,
            expires_in_days,
            redirect_url,
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
            Some("  Welcome!  "),
            Some("14"),
            Some("https://app.example.com/welcome?x=1"),
            &allowed(),
        )
        .unwrap();
        assert_eq!(options.message.as_deref(), Some("Welcome!"));
        assert_eq!(options.expires_in_days, Some(14));
        assert_eq!(
            options.redirect_url.as_deref(),
            Some("https://app.example.com/welcome?x=1")
        );
        assert_eq!(
            ImportOptions::parse(Some(" "), Some(""), None, &[]).unwrap(),
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
            (Some(&long), None, None, OptionError::MessageTooLong),
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
        for (message, days, url, want) in cases {
            assert_eq!(
                ImportOptions::parse(message, days, url, &allowed()),
                Err(want)
            );
        }
        let other_port =
            ImportOptions::parse(None, None, Some("http://localhost:3001/"), &allowed());
        assert!(matches!(other_port, Err(OptionError::OriginNotAllowed(_))));
    }
}
