//! The invite-file parser: bytes to text ([`decode`]) and text to entries ([`entries`]).
//!
//! A file is read like an address list pasted from a mail client. Entries
//! are separated by line breaks (LF, CRLF or CR, each one break), commas,
//! semicolons and whitespace, except inside double quotes, `<...>` and
//! `(...)`. A line break always ends an entry, so one stray `"` or `<`
//! cannot swallow the rest of the file; such an entry is flagged
//! [`Entry::unbalanced`] and [`Entry::validate`] rejects it.
//!
//! Display names: within a run between hard separators (comma, semicolon,
//! line break), words without an `@` that are followed by an angle-bracket
//! token are that token's display name (`Ann Lee <ann@x.io>`,
//! `"Lee, Ann" <ann@x.io>`); otherwise every word is its own entry. A
//! parenthesised comment right after an address belongs to it.
//!
//! Parsing is lazy, allocation-free and linear in the input size.

use std::borrow::Cow;
use std::iter::FusedIterator;

use super::email::{EmailAddress, InvalidReason};

/// Why an uploaded file could not be turned into text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// NUL bytes or other binary content.
    #[error(
        "line {line} contains a NUL byte, so this looks like a binary file: \
         upload a plain text file saved as UTF-8"
    )]
    Binary {
        /// 1-based line of the first NUL byte.
        line: u64,
    },
    /// Not valid UTF-8.
    #[error("line {line} is not valid UTF-8: save the file as UTF-8 text and upload it again")]
    InvalidUtf8 {
        /// 1-based line of the first invalid byte sequence.
        line: u64,
    },
    /// UTF-16 (detected by its byte-order mark) with an odd number of bytes or an unpaired surrogate.
    #[error(
        "line {line} is not valid UTF-16 (a broken character or a cut-off file): \
         save the file as UTF-8 text and upload it again"
    )]
    InvalidUtf16 {
        /// 1-based line of the first invalid code unit.
        line: u64,
    },
}

/// Turn uploaded bytes into text.
///
/// A UTF-8 byte-order mark is stripped; UTF-16 LE or BE with a byte-order
/// mark is transcoded (the only case that allocates). Any NUL byte (or
/// U+0000 in UTF-16) is [`DecodeError::Binary`].
pub fn decode(bytes: &[u8]) -> Result<Cow<'_, str>, DecodeError> {
    match bytes {
        [0xEF, 0xBB, 0xBF, rest @ ..] => decode_utf8(rest),
        [0xFF, 0xFE, rest @ ..] => decode_utf16(rest, u16::from_le_bytes).map(Cow::Owned),
        [0xFE, 0xFF, rest @ ..] => decode_utf16(rest, u16::from_be_bytes).map(Cow::Owned),
        _ => decode_utf8(bytes),
    }
}

fn decode_utf8(bytes: &[u8]) -> Result<Cow<'_, str>, DecodeError> {
    // `contains` is memchr-fast; the line is only worked out on the error path.
    if bytes.contains(&0) {
        let line = line_at(bytes, bytes.iter().position(|&b| b == 0).unwrap_or(0));
        return Err(DecodeError::Binary { line });
    }
    std::str::from_utf8(bytes)
        .map(Cow::Borrowed)
        .map_err(|e| DecodeError::InvalidUtf8 {
            line: line_at(bytes, e.valid_up_to()),
        })
}

fn decode_utf16(bytes: &[u8], unit: fn([u8; 2]) -> u16) -> Result<String, DecodeError> {
    let chunks = bytes.chunks_exact(2);
    let odd = !chunks.remainder().is_empty();
    let mut out = String::with_capacity(bytes.len());
    for ch in char::decode_utf16(chunks.map(|c| unit([c[0], c[1]]))) {
        match ch {
            Ok(ch) if ch != '\0' => out.push(ch),
            bad => {
                let line = line_at(out.as_bytes(), out.len());
                return Err(match bad {
                    Ok(_) => DecodeError::Binary { line },
                    Err(_) => DecodeError::InvalidUtf16 { line },
                });
            }
        }
    }
    if odd {
        let line = line_at(out.as_bytes(), out.len());
        return Err(DecodeError::InvalidUtf16 { line });
    }
    Ok(out)
}

/// 1-based line of byte `pos`, counting LF, CR and CRLF as one break each.
fn line_at(bytes: &[u8], pos: usize) -> u64 {
    let end = pos.min(bytes.len());
    let mut line = 1;
    let mut i = 0;
    while i < end {
        match bytes[i] {
            b'\n' => line += 1,
            b'\r' => {
                line += 1;
                if bytes.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    line
}

/// One entry of the file, borrowing from the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    /// 1-based line on which the entry starts.
    pub line: u64,
    /// The entry's text as written (trimmed of surrounding whitespace/separators), e.g. `"Lee, Ann" <ann@x.io>`.
    pub raw: &'a str,
    /// The address part to validate: the text inside the angle brackets when
    /// there are any (trimmed), else the whole raw entry.
    pub address: &'a str,
    /// The entry has an unclosed `"`, `<` or `(` (cut off by a line break or
    /// the end of the file) or a stray `>` or `)`; [`validate`](Self::validate)
    /// then reports [`InvalidReason::Unbalanced`].
    pub unbalanced: bool,
}

impl Entry<'_> {
    /// Validates the entry: [`InvalidReason::Unbalanced`] if
    /// [`unbalanced`](Self::unbalanced), else [`EmailAddress::parse`] of
    /// [`address`](Self::address). Callers should use this rather than parsing
    /// `address` themselves.
    pub fn validate(&self) -> Result<EmailAddress, InvalidReason> {
        if self.unbalanced {
            return Err(InvalidReason::Unbalanced);
        }
        EmailAddress::parse(self.address)
    }
}

/// Iterate the entries of a decoded file, in file order (lazy, no per-entry allocation).
pub fn entries(text: &str) -> Entries<'_> {
    Entries {
        text,
        pos: 0,
        line: 1,
        plain_until: 0,
    }
}

/// Iterator over the entries of a text; see [`entries`].
#[derive(Debug, Clone)]
pub struct Entries<'a> {
    text: &'a str,
    /// Byte offset of the next unread byte.
    pos: usize,
    /// Line of `pos`.
    line: u64,
    /// Words without `@` that start before this offset are known not to be
    /// followed by an angle-bracket token in their run (keeps lookahead linear).
    plain_until: usize,
}

// Byte classes for the scanner.
const ORD: u8 = 0;
const SPACE: u8 = 1;
const HARD: u8 = 2;
const NL: u8 = 3;
const QUOTE: u8 = 4;
const LT: u8 = 5;
const CLOSE: u8 = 6;
const LP: u8 = 7;
const AT: u8 = 8;

const CLASS: [u8; 256] = {
    let mut t = [ORD; 256];
    t[b' ' as usize] = SPACE;
    t[b'\t' as usize] = SPACE;
    t[0x0B] = SPACE;
    t[0x0C] = SPACE;
    t[b',' as usize] = HARD;
    t[b';' as usize] = HARD;
    t[b'\n' as usize] = NL;
    t[b'\r' as usize] = NL;
    t[b'"' as usize] = QUOTE;
    t[b'<' as usize] = LT;
    t[b'>' as usize] = CLOSE;
    t[b')' as usize] = CLOSE;
    t[b'(' as usize] = LP;
    t[b'@' as usize] = AT;
    t
};

fn class(bytes: &[u8], i: usize) -> u8 {
    bytes.get(i).map_or(NL, |&b| CLASS[b as usize])
}

/// One whitespace-delimited token, with quoted/bracketed/parenthesised parts kept whole.
struct Token {
    start: usize,
    end: usize,
    /// An `@` outside quotes, brackets and parentheses.
    has_at: bool,
    /// Content range of the first `<...>` (to the token end if unclosed).
    angle: Option<(usize, usize)>,
    unbalanced: bool,
}

impl Token {
    /// A `(...)` comment token that can attach to the preceding address.
    fn is_comment(&self, bytes: &[u8]) -> bool {
        bytes.get(self.start) == Some(&b'(') && !self.has_at && self.angle.is_none()
    }
}

/// Index of the first line break (or the end) at or after `i`.
fn line_end(bytes: &[u8], i: usize) -> usize {
    bytes[i.min(bytes.len())..]
        .iter()
        .position(|&b| b == b'\n' || b == b'\r')
        .map_or(bytes.len(), |p| i + p)
}

fn scan_token(bytes: &[u8], start: usize) -> Token {
    let mut t = Token {
        start,
        end: start,
        has_at: false,
        angle: None,
        unbalanced: false,
    };
    let mut i = start;
    loop {
        while i < bytes.len() && CLASS[bytes[i] as usize] == ORD {
            i += 1;
        }
        match class(bytes, i) {
            SPACE | HARD | NL => break,
            AT => {
                t.has_at = true;
                i += 1;
            }
            CLOSE => {
                t.unbalanced = true;
                i += 1;
            }
            c => {
                let closed = match c {
                    QUOTE => close_quote(bytes, i + 1),
                    LT => close_angle(bytes, i + 1),
                    _ => close_paren(bytes, i + 1),
                };
                // Unclosed: the token (and so the entry) ends at the line break.
                let stop = closed.unwrap_or_else(|| line_end(bytes, i));
                if c == LT && t.angle.is_none() {
                    t.angle = Some((i + 1, if closed.is_some() { stop - 1 } else { stop }));
                }
                i = stop;
                if closed.is_none() {
                    t.unbalanced = true;
                    break;
                }
            }
        }
    }
    t.end = i;
    t
}

/// After an opening `"` at `i - 1`: the index just past the closing quote,
/// or `None` if a line break or the end comes first. `\` escapes one byte.
fn close_quote(bytes: &[u8], mut i: usize) -> Option<usize> {
    while let Some(&b) = bytes.get(i) {
        match b {
            b'"' => return Some(i + 1),
            b'\n' | b'\r' => return None,
            b'\\' if !matches!(bytes.get(i + 1), Some(b'\n' | b'\r')) => i += 2,
            _ => i += 1,
        }
    }
    None
}

/// After an opening `<` at `i - 1`: the index just past the `>`, or `None` if
/// a line break or the end comes first (stopping there keeps long lines linear).
fn close_angle(bytes: &[u8], i: usize) -> Option<usize> {
    let p = bytes
        .get(i..)?
        .iter()
        .position(|&b| matches!(b, b'>' | b'\n' | b'\r'))?;
    (bytes[i + p] == b'>').then_some(i + p + 1)
}

/// After an opening `(` at `i - 1`: the index just past the matching `)`
/// (comments nest), or `None` if a line break or the end comes first.
fn close_paren(bytes: &[u8], mut i: usize) -> Option<usize> {
    let mut depth = 1usize;
    while let Some(&b) = bytes.get(i) {
        i += 1;
        match b {
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            b'\n' | b'\r' => return None,
            _ => {}
        }
    }
    None
}

/// Skips spaces and tabs (not hard separators or line breaks).
fn skip_spaces(bytes: &[u8], mut i: usize) -> usize {
    while class(bytes, i) == SPACE {
        i += 1;
    }
    i
}

impl<'a> Entries<'a> {
    fn slice(&self, start: usize, end: usize) -> &'a str {
        self.text.get(start..end).unwrap_or("")
    }

    /// Skips separators, counting lines; false at the end of the text.
    fn skip_separators(&mut self, bytes: &[u8]) -> bool {
        while let Some(&b) = bytes.get(self.pos) {
            match CLASS[b as usize] {
                SPACE | HARD => self.pos += 1,
                NL => {
                    self.pos += 1;
                    self.line += 1;
                    if b == b'\r' && bytes.get(self.pos) == Some(&b'\n') {
                        self.pos += 1;
                    }
                }
                _ => return true,
            }
        }
        false
    }

    /// For a word without `@` at `first`: the angle token that it (with the
    /// words after it) is the display name of, if any. Records `plain_until`
    /// otherwise so that later words of the run skip the lookahead.
    fn find_display_target(&mut self, bytes: &[u8], first: &Token) -> Option<(Token, bool)> {
        let mut unbalanced = first.unbalanced;
        let mut j = first.end;
        loop {
            j = skip_spaces(bytes, j);
            if matches!(class(bytes, j), HARD | NL) {
                self.plain_until = j;
                return None;
            }
            let t = scan_token(bytes, j);
            if t.angle.is_some() {
                unbalanced |= t.unbalanced;
                return Some((t, unbalanced));
            }
            if t.has_at {
                self.plain_until = t.start;
                return None;
            }
            unbalanced |= t.unbalanced;
            j = t.end;
        }
    }
}

impl<'a> Iterator for Entries<'a> {
    type Item = Entry<'a>;

    fn next(&mut self) -> Option<Entry<'a>> {
        let bytes = self.text.as_bytes();
        if !self.skip_separators(bytes) {
            return None;
        }
        let first = scan_token(bytes, self.pos);
        let (mut end, mut unbalanced) = (first.end, first.unbalanced);
        let mut angle = first.angle;
        let mut attach_comments = first.angle.is_some() || first.has_at;
        if !attach_comments && first.start >= self.plain_until {
            if let Some((target, unb)) = self.find_display_target(bytes, &first) {
                end = target.end;
                unbalanced = unb;
                angle = target.angle;
                attach_comments = true;
            }
        }
        if attach_comments {
            loop {
                let k = skip_spaces(bytes, end);
                if bytes.get(k) != Some(&b'(') {
                    break;
                }
                let t = scan_token(bytes, k);
                if !t.is_comment(bytes) {
                    break;
                }
                end = t.end;
                unbalanced |= t.unbalanced;
            }
        }
        self.pos = end;
        let raw = self.slice(first.start, end).trim_ascii_end();
        let address = match angle {
            Some((a, b)) => self.slice(a, b).trim_ascii(),
            None => raw,
        };
        Some(Entry {
            line: self.line,
            raw,
            address,
            unbalanced,
        })
    }
}

impl FusedIterator for Entries<'_> {}

#[cfg(test)]
#[path = "parser_tests.rs"]
mod tests;
