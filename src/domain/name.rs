//! Names people read in an email: an account's display name and the
//! person who invited them. Trimmed, at most [`MAX_NAME_CHARS`]
//! characters, no control characters (they would break a subject line).

/// The longest name, in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// A checked display name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

/// A name that cannot be shown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("is empty")]
    Empty,
    #[error("is longer than {MAX_NAME_CHARS} characters")]
    TooLong,
    #[error("holds a control character (a line break, tab or the like)")]
    ControlCharacter,
}

impl DisplayName {
    /// Trims `raw` and checks it.
    pub fn parse(raw: &str) -> Result<DisplayName, NameError> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(NameError::Empty);
        }
        if name.chars().count() > MAX_NAME_CHARS {
            return Err(NameError::TooLong);
        }
        // Bidirectional overrides are not `is_control` but can make a name
        // read as something else; refuse them too.
        let bidi = |c: char| matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
        if name.chars().any(|c| c.is_control() || bidi(c)) {
            return Err(NameError::ControlCharacter);
        }
        Ok(DisplayName(name.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_kept() {
        assert_eq!(
            DisplayName::parse("  Ann Lee ").unwrap().as_str(),
            "Ann Lee"
        );
        let longest = "é".repeat(MAX_NAME_CHARS);
        assert_eq!(DisplayName::parse(&longest).unwrap().as_str(), longest);
        assert_eq!(
            DisplayName::parse("Smith & <Sons>").unwrap().as_str(),
            "Smith & <Sons>",
            "escaping is the template's job"
        );
    }

    #[test]
    fn unusable_names_are_refused() {
        let long = "x".repeat(MAX_NAME_CHARS + 1);
        let cases = [
            ("", NameError::Empty),
            ("   ", NameError::Empty),
            (long.as_str(), NameError::TooLong),
            ("Ann\nLee", NameError::ControlCharacter),
            ("Ann\tLee", NameError::ControlCharacter),
            ("Ann\u{7}", NameError::ControlCharacter),
            ("Ann\u{202E}eeL", NameError::ControlCharacter),
        ];
        for (raw, want) in cases {
            assert_eq!(DisplayName::parse(raw), Err(want), "{raw:?}");
        }
    }
}
