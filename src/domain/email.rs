//! Email address validation ("parse, don't validate").
//!
//! [`EmailAddress::parse`] accepts only addresses that are deliverable in
//! practice: a dot-atom local part and a DNS domain name of at least two
//! labels. Anything else is rejected with an [`InvalidReason`] whose
//! [`code`](InvalidReason::code) is stable and whose
//! [`description`](InvalidReason::description) tells a person what to fix.
//!
//! Normalisation: the local part is kept as written, the domain is
//! lower-cased and an internationalised domain is stored in punycode
//! (A-label) form. ASCII domains take a fast path that allocates only the
//! output string; `idna` is used only for non-ASCII domains.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

/// Maximum length of a whole address in octets (RFC 5321 path limit less the brackets).
const MAX_ADDRESS: usize = 254;
/// Maximum length of the local part in octets.
const MAX_LOCAL: usize = 64;
/// Maximum length of one domain label in octets.
const MAX_LABEL: usize = 63;

/// A validated, normalised email address.
///
/// Equality, ordering and hashing use the normalised text ([`as_str`](Self::as_str)),
/// which is case-sensitive in the local part; use [`key`](Self::key) to find duplicates.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EmailAddress {
    /// `local@domain`, domain lower-cased ASCII.
    text: String,
    /// Byte index of the `@` in `text`.
    at: usize,
}

impl EmailAddress {
    /// Parses one address (no display name, no angle brackets: the caller
    /// extracts those). Leading/trailing whitespace is trimmed.
    ///
    /// Checks run in an order chosen so that the reason is the most helpful
    /// one: empty, quoted local part, comment, missing `@`, whitespace,
    /// domain literal, multiple `@`, local-part checks, domain checks, and
    /// finally the overall length (measured after punycode conversion).
    pub fn parse(input: &str) -> Result<EmailAddress, InvalidReason> {
        use InvalidReason as R;
        let s = input.trim();
        let bytes = s.as_bytes();
        if s.is_empty() {
            return Err(R::Empty);
        }
        if bytes[0] == b'"' {
            return Err(R::QuotedLocalPart);
        }
        if bytes.iter().any(|&b| b == b'(' || b == b')') {
            return Err(R::Comment);
        }
        let Some(at) = s.find('@') else {
            return Err(R::MissingAt);
        };
        if has_whitespace(s) {
            return Err(R::Whitespace);
        }
        let (local, domain) = (&s[..at], &s[at + 1..]);
        if domain.starts_with('[') {
            return Err(R::DomainLiteral);
        }
        if domain.contains('@') {
            return Err(R::MultipleAt);
        }
        check_local(local)?;
        if domain.is_empty() {
            return Err(R::MissingDomain);
        }
        // Fast path: an ASCII domain is checked as written (case-insensitively);
        // only a non-ASCII domain goes through IDNA (which also lower-cases it).
        let domain = if domain.is_ascii() {
            Cow::Borrowed(domain)
        } else {
            idna::domain_to_ascii_cow(domain.as_bytes(), idna::AsciiDenyList::STD3)
                .map_err(|_| R::BadDomain)?
        };
        check_domain(domain.as_bytes())?;
        if local.len() + 1 + domain.len() > MAX_ADDRESS {
            return Err(R::TooLong);
        }
        let mut text = String::with_capacity(local.len() + 1 + domain.len());
        text.push_str(local);
        text.push('@');
        text.push_str(&domain);
        text[at + 1..].make_ascii_lowercase();
        Ok(EmailAddress { text, at })
    }

    /// The normalised address: local part as written, domain lower-cased,
    /// IDN domain in punycode (A-label) form.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The local part (before the `@`), as written.
    pub fn local_part(&self) -> &str {
        &self.text[..self.at]
    }

    /// The normalised domain (after the `@`): lower-case ASCII, punycode for IDNs.
    pub fn domain(&self) -> &str {
        &self.text[self.at + 1..]
    }

    /// The comparison key used to find duplicates: the whole normalised
    /// address lower-cased (ASCII). Allocates a new `String` on each call.
    pub fn key(&self) -> String {
        self.text.to_ascii_lowercase()
    }

    /// Consumes the address, returning the normalised text ([`as_str`](Self::as_str)).
    pub fn into_string(self) -> String {
        self.text
    }
}

impl fmt::Display for EmailAddress {
    /// Writes the normalised address.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl AsRef<str> for EmailAddress {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

impl FromStr for EmailAddress {
    type Err = InvalidReason;

    /// Same as [`EmailAddress::parse`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EmailAddress::parse(s)
    }
}

impl From<EmailAddress> for String {
    fn from(address: EmailAddress) -> String {
        address.into_string()
    }
}

/// Why an entry is not a usable email address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvalidReason {
    /// `empty`: the entry is empty or only whitespace.
    Empty,
    /// `missing_at`: no `@` at all.
    MissingAt,
    /// `multiple_at`: more than one unquoted `@`.
    MultipleAt,
    /// `whitespace`: whitespace inside the address (`ann lee@x.io`).
    Whitespace,
    /// `missing_local_part`: nothing before the `@`.
    MissingLocalPart,
    /// `local_part_too_long`: more than 64 octets before the `@`.
    LocalPartTooLong,
    /// `quoted_local_part`: the local part is a quoted string (`"john doe"@x.io`).
    QuotedLocalPart,
    /// `non_ascii_local_part`: non-ASCII characters before the `@` (`jörg@x.de`).
    NonAsciiLocalPart,
    /// `bad_local_part`: a character outside atext, or a leading, trailing or double dot.
    BadLocalPart,
    /// `comment`: a `(` or `)` anywhere (`ann(work)@x.io`).
    Comment,
    /// `domain_literal`: an IP address in brackets (`ann@[192.0.2.1]`).
    DomainLiteral,
    /// `missing_domain`: nothing after the `@`.
    MissingDomain,
    /// `single_label_domain`: a domain without a dot (`ann@localhost`).
    SingleLabelDomain,
    /// `bad_domain`: a character other than letters, digits, hyphens and dots
    /// (after IDN conversion), or an internationalised domain that IDNA rejects.
    BadDomain,
    /// `empty_domain_label`: two dots in a row, or a leading or trailing dot (`x..io`, `x.io.`).
    EmptyDomainLabel,
    /// `domain_label_too_long`: a label longer than 63 octets.
    DomainLabelTooLong,
    /// `domain_label_hyphen`: a label starting or ending with a hyphen (`-x.io`, `x-.io`).
    DomainLabelHyphen,
    /// `numeric_tld`: the last label is all digits (`ann@1.2.3.4`).
    NumericTld,
    /// `too_long`: more than 254 octets in all (after punycode conversion).
    TooLong,
    /// `unbalanced`: the entry has an unclosed quote, `<` or `(`, or a stray
    /// `>` or `)`. Only [`Entry::validate`](super::parser::Entry::validate) reports this.
    Unbalanced,
}

impl InvalidReason {
    /// All variants (for documentation tables), in check order.
    pub const ALL: &'static [InvalidReason] = &[
        Self::Empty,
        Self::Unbalanced,
        Self::QuotedLocalPart,
        Self::Comment,
        Self::MissingAt,
        Self::Whitespace,
        Self::DomainLiteral,
        Self::MultipleAt,
        Self::MissingLocalPart,
        Self::NonAsciiLocalPart,
        Self::LocalPartTooLong,
        Self::BadLocalPart,
        Self::MissingDomain,
        Self::BadDomain,
        Self::EmptyDomainLabel,
        Self::DomainLabelTooLong,
        Self::DomainLabelHyphen,
        Self::SingleLabelDomain,
        Self::NumericTld,
        Self::TooLong,
    ];

    /// Stable snake_case code shown in reports and the API, e.g. `"missing_at"`.
    pub fn code(self) -> &'static str {
        self.texts().0
    }

    /// The reason with this [`code`](InvalidReason::code).
    pub fn from_code(code: &str) -> Option<InvalidReason> {
        InvalidReason::ALL
            .iter()
            .copied()
            .find(|r| r.code() == code)
    }

    /// One sentence a person can act on, e.g. "the entry has no @ sign".
    pub fn description(self) -> &'static str {
        self.texts().1
    }

    fn texts(self) -> (&'static str, &'static str) {
        use InvalidReason as R;
        match self {
            R::Empty => ("empty", "the entry is empty"),
            R::MissingAt => ("missing_at", "the entry has no @ sign"),
            R::MultipleAt => ("multiple_at", "the entry has more than one @ sign; put each address in its own entry"),
            R::Whitespace => ("whitespace", "the address contains a space; remove it, or separate two addresses with a comma"),
            R::MissingLocalPart => ("missing_local_part", "there is nothing before the @ sign"),
            R::LocalPartTooLong => ("local_part_too_long", "the part before the @ sign is longer than 64 characters"),
            R::QuotedLocalPart => ("quoted_local_part", "the part before the @ sign is in quotes, which most mail systems reject; use an address without quotes"),
            R::NonAsciiLocalPart => ("non_ascii_local_part", "the part before the @ sign has accented or other non-ASCII letters, which most mail systems reject"),
            R::BadLocalPart => ("bad_local_part", "the part before the @ sign has a character that is not allowed, a dot at its start or end, or two dots in a row"),
            R::Comment => ("comment", "the address contains a comment in parentheses; remove the text in parentheses"),
            R::DomainLiteral => ("domain_literal", "the domain is an IP address in square brackets; use a domain name such as example.com"),
            R::MissingDomain => ("missing_domain", "there is nothing after the @ sign"),
            R::SingleLabelDomain => ("single_label_domain", "the domain has no dot (like localhost); use a full domain name such as example.com"),
            R::BadDomain => ("bad_domain", "the domain has a character that is not allowed; use only letters, digits, hyphens and dots"),
            R::EmptyDomainLabel => ("empty_domain_label", "the domain has two dots in a row, or a dot at its start or end"),
            R::DomainLabelTooLong => ("domain_label_too_long", "a part of the domain between two dots is longer than 63 characters"),
            R::DomainLabelHyphen => ("domain_label_hyphen", "a part of the domain starts or ends with a hyphen"),
            R::NumericTld => ("numeric_tld", "the domain ends in a number, like an IP address; use a domain name such as example.com"),
            R::TooLong => ("too_long", "the address is longer than 254 characters"),
            R::Unbalanced => ("unbalanced", "the entry has an unclosed quote, angle bracket or parenthesis, or a stray closing one; fix the punctuation on this line"),
        }
    }
}

impl fmt::Display for InvalidReason {
    /// Writes the [`code`](Self::code).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl std::error::Error for InvalidReason {}

/// Whitespace anywhere in `s` (ASCII fast path, Unicode otherwise).
fn has_whitespace(s: &str) -> bool {
    if s.is_ascii() {
        s.bytes().any(|b| b.is_ascii_whitespace())
    } else {
        s.chars().any(char::is_whitespace)
    }
}

/// RFC 5322 atext (ASCII letters, digits and the specials below).
fn is_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~-".contains(&b)
}

/// Checks the local part is a dot-atom of 1..=64 octets.
fn check_local(local: &str) -> Result<(), InvalidReason> {
    use InvalidReason as R;
    if local.is_empty() {
        return Err(R::MissingLocalPart);
    }
    if !local.is_ascii() {
        return Err(R::NonAsciiLocalPart);
    }
    if local.len() > MAX_LOCAL {
        return Err(R::LocalPartTooLong);
    }
    let ok = local
        .as_bytes()
        .split(|&b| b == b'.')
        .all(|atom| !atom.is_empty() && atom.iter().all(|&b| is_atext(b)));
    if ok {
        Ok(())
    } else {
        Err(R::BadLocalPart)
    }
}

/// Checks an ASCII domain (any case): LDH labels of 1..=63 octets, no edge
/// hyphens, at least two labels, and a top-level label that is not all digits.
fn check_domain(domain: &[u8]) -> Result<(), InvalidReason> {
    use InvalidReason as R;
    let mut labels = 0usize;
    let mut last: &[u8] = &[];
    for label in domain.split(|&b| b == b'.') {
        labels += 1;
        last = label;
        let (Some(&first), Some(&end)) = (label.first(), label.last()) else {
            return Err(R::EmptyDomainLabel);
        };
        if !label
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(R::BadDomain);
        }
        if label.len() > MAX_LABEL {
            return Err(R::DomainLabelTooLong);
        }
        if first == b'-' || end == b'-' {
            return Err(R::DomainLabelHyphen);
        }
    }
    if labels < 2 {
        return Err(R::SingleLabelDomain);
    }
    if last.iter().all(u8::is_ascii_digit) {
        return Err(R::NumericTld);
    }
    Ok(())
}

#[cfg(test)]
#[path = "email_tests.rs"]
mod tests;

impl serde::Serialize for InvalidReason {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}
