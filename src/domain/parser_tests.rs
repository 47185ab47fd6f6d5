//! Unit tests for [`super::decode`] and [`super::entries`].

use super::{decode, entries, DecodeError, Entry};
use crate::domain::InvalidReason;
use std::borrow::Cow;

/// `(line, raw, address, unbalanced)` of every entry.
fn parse(text: &str) -> Vec<(u64, &str, &str, bool)> {
    entries(text)
        .map(|e| (e.line, e.raw, e.address, e.unbalanced))
        .collect()
}

fn utf16(text: &str, big_endian: bool) -> Vec<u8> {
    let mut out = if big_endian {
        vec![0xFE, 0xFF]
    } else {
        vec![0xFF, 0xFE]
    };
    for unit in text.encode_utf16() {
        out.extend(if big_endian {
            unit.to_be_bytes()
        } else {
            unit.to_le_bytes()
        });
    }
    out
}

#[test]
fn decode_accepts_utf8_and_utf16_with_bom() {
    let cases: Vec<(&str, Vec<u8>, &str, bool)> = vec![
        ("plain", b"ann@x.io\n".to_vec(), "ann@x.io\n", true),
        ("empty", Vec::new(), "", true),
        (
            "utf-8 bom",
            b"\xEF\xBB\xBFann@x.io".to_vec(),
            "ann@x.io",
            true,
        ),
        (
            "utf-8 non-ascii",
            "ann@bücher.de".as_bytes().to_vec(),
            "ann@bücher.de",
            true,
        ),
        (
            "utf-16le",
            utf16("ann@x.io\r\nbob@bücher.de", false),
            "ann@x.io\r\nbob@bücher.de",
            false,
        ),
        (
            "utf-16be",
            utf16("ann@x.io\nbob@例え.jp", true),
            "ann@x.io\nbob@例え.jp",
            false,
        ),
        ("utf-16le only bom", vec![0xFF, 0xFE], "", false),
    ];
    for (name, bytes, want, borrowed) in cases {
        let got = decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got, want, "{name}");
        assert_eq!(matches!(got, Cow::Borrowed(_)), borrowed, "{name}");
    }
}

#[test]
fn decode_errors_name_the_line() {
    let mut odd = utf16("a@x.io\nb@y.io", false);
    odd.push(b'c');
    let cases: Vec<(&str, Vec<u8>, DecodeError)> = vec![
        (
            "nul line 1",
            b"a\0b".to_vec(),
            DecodeError::Binary { line: 1 },
        ),
        (
            "nul line 3 lf",
            b"a\nb\n\0".to_vec(),
            DecodeError::Binary { line: 3 },
        ),
        (
            "nul line 3 crlf",
            b"a\r\nb\r\nc\0".to_vec(),
            DecodeError::Binary { line: 3 },
        ),
        (
            "nul line 3 cr",
            b"a\rb\rc\0".to_vec(),
            DecodeError::Binary { line: 3 },
        ),
        (
            "nul after bom",
            b"\xEF\xBB\xBFa\n\0".to_vec(),
            DecodeError::Binary { line: 2 },
        ),
        (
            "nul before bad utf8",
            b"\0\xFF".to_vec(),
            DecodeError::Binary { line: 1 },
        ),
        (
            "bad utf8 line 3",
            b"a@x.io\nb@y.io\nj\xF6rg@x.de\n".to_vec(),
            DecodeError::InvalidUtf8 { line: 3 },
        ),
        (
            "bad utf8 crlf",
            b"a\r\nb\r\n\xC3".to_vec(),
            DecodeError::InvalidUtf8 { line: 3 },
        ),
        (
            "bad utf8 cr",
            b"a\r\r\xC3(".to_vec(),
            DecodeError::InvalidUtf8 { line: 3 },
        ),
        (
            "latin-1 line 1",
            b"j\xF6rg@x.de".to_vec(),
            DecodeError::InvalidUtf8 { line: 1 },
        ),
        (
            "utf-16 odd length",
            odd,
            DecodeError::InvalidUtf16 { line: 2 },
        ),
        (
            "utf-16 lone surrogate",
            vec![0xFF, 0xFE, b'a', 0, b'\n', 0, 0x00, 0xD8, b'b', 0],
            DecodeError::InvalidUtf16 { line: 2 },
        ),
        (
            "utf-16 nul",
            vec![0xFE, 0xFF, 0, b'a', 0, 0],
            DecodeError::Binary { line: 1 },
        ),
    ];
    for (name, bytes, want) in cases {
        assert_eq!(decode(&bytes), Err(want), "{name}");
    }
}

#[test]
fn decode_error_messages_are_actionable() {
    let cases = [
        (
            DecodeError::InvalidUtf8 { line: 3 },
            "line 3 is not valid UTF-8: save the file as UTF-8 text",
        ),
        (
            DecodeError::Binary { line: 7 },
            "line 7 contains a NUL byte",
        ),
        (
            DecodeError::InvalidUtf16 { line: 2 },
            "line 2 is not valid UTF-16",
        ),
    ];
    for (err, prefix) in cases {
        assert!(err.to_string().starts_with(prefix), "{err}");
    }
}

#[test]
fn entries_split_and_keep_display_names() {
    type Want<'a> = Vec<(u64, &'a str, &'a str, bool)>;
    let cases: Vec<(&str, &str, Want)> = vec![
        ("empty", "", vec![]),
        ("only separators", " ,;\n\r\n\t ", vec![]),
        ("one", "ann@x.io", vec![(1, "ann@x.io", "ann@x.io", false)]),
        (
            "lf",
            "a@x.io\nb@y.io\n",
            vec![
                (1, "a@x.io", "a@x.io", false),
                (2, "b@y.io", "b@y.io", false),
            ],
        ),
        (
            "crlf",
            "a@x.io\r\nb@y.io\r\n\r\nc@z.io",
            vec![
                (1, "a@x.io", "a@x.io", false),
                (2, "b@y.io", "b@y.io", false),
                (4, "c@z.io", "c@z.io", false),
            ],
        ),
        (
            "cr only",
            "a@x.io\rb@y.io\r\rc@z.io",
            vec![
                (1, "a@x.io", "a@x.io", false),
                (2, "b@y.io", "b@y.io", false),
                (4, "c@z.io", "c@z.io", false),
            ],
        ),
        (
            "blank entries",
            "a@x.io,,;\n\n  ,b@y.io,",
            vec![
                (1, "a@x.io", "a@x.io", false),
                (3, "b@y.io", "b@y.io", false),
            ],
        ),
        (
            "commas semicolons",
            "a@x.io, b@y.io;c@z.io ;",
            vec![
                (1, "a@x.io", "a@x.io", false),
                (1, "b@y.io", "b@y.io", false),
                (1, "c@z.io", "c@z.io", false),
            ],
        ),
        (
            "whitespace",
            "a@x.io b@y.io\tc@z.io",
            vec![
                (1, "a@x.io", "a@x.io", false),
                (1, "b@y.io", "b@y.io", false),
                (1, "c@z.io", "c@z.io", false),
            ],
        ),
        (
            "quoted display name",
            "\"Lee, Ann\" <ann@x.io>, bob@y.io",
            vec![
                (1, "\"Lee, Ann\" <ann@x.io>", "ann@x.io", false),
                (1, "bob@y.io", "bob@y.io", false),
            ],
        ),
        (
            "display name",
            "Ann Lee <ann@x.io>",
            vec![(1, "Ann Lee <ann@x.io>", "ann@x.io", false)],
        ),
        (
            "display then address",
            "Ann Lee <ann@x.io> bob@y.io",
            vec![
                (1, "Ann Lee <ann@x.io>", "ann@x.io", false),
                (1, "bob@y.io", "bob@y.io", false),
            ],
        ),
        (
            "no space before bracket",
            "\"Ann\"<ann@x.io>;Bob<bob@y.io>",
            vec![
                (1, "\"Ann\"<ann@x.io>", "ann@x.io", false),
                (1, "Bob<bob@y.io>", "bob@y.io", false),
            ],
        ),
        (
            "bare bracket",
            "  < ann@x.io >  ",
            vec![(1, "< ann@x.io >", "ann@x.io", false)],
        ),
        (
            "quoted @ in display",
            "\"ann@x.io\" <ann@x.io>",
            vec![(1, "\"ann@x.io\" <ann@x.io>", "ann@x.io", false)],
        ),
        (
            "trailing word",
            "ann@x.io Ann",
            vec![(1, "ann@x.io", "ann@x.io", false), (1, "Ann", "Ann", false)],
        ),
        (
            "words then address",
            "Ann Lee ann@x.io",
            vec![
                (1, "Ann", "Ann", false),
                (1, "Lee", "Lee", false),
                (1, "ann@x.io", "ann@x.io", false),
            ],
        ),
        (
            "name cut by comma",
            "Ann, Lee <ann@x.io>",
            vec![
                (1, "Ann", "Ann", false),
                (1, "Lee <ann@x.io>", "ann@x.io", false),
            ],
        ),
        (
            "comment after address",
            "ann@x.io (Ann Lee), b@y.io",
            vec![
                (1, "ann@x.io (Ann Lee)", "ann@x.io (Ann Lee)", false),
                (1, "b@y.io", "b@y.io", false),
            ],
        ),
        (
            "comment after bracket",
            "Ann <ann@x.io> (work)",
            vec![(1, "Ann <ann@x.io> (work)", "ann@x.io", false)],
        ),
        (
            "comment inside token",
            "ann(x)@y.io",
            vec![(1, "ann(x)@y.io", "ann(x)@y.io", false)],
        ),
        (
            "quoted local part",
            "\"john doe\"@x.io",
            vec![(1, "\"john doe\"@x.io", "\"john doe\"@x.io", false)],
        ),
        (
            "escaped quote",
            "\"a\\\" b\"@x.io",
            vec![(1, "\"a\\\" b\"@x.io", "\"a\\\" b\"@x.io", false)],
        ),
        (
            "unclosed quote",
            "\"Lee, Ann <ann@x.io>\nbob@y.io",
            vec![
                (1, "\"Lee, Ann <ann@x.io>", "\"Lee, Ann <ann@x.io>", true),
                (2, "bob@y.io", "bob@y.io", false),
            ],
        ),
        (
            "unclosed bracket",
            "Ann <ann@x.io, \r\nbob@y.io",
            vec![
                (1, "Ann <ann@x.io,", "ann@x.io,", true),
                (2, "bob@y.io", "bob@y.io", false),
            ],
        ),
        (
            "unclosed paren",
            "ann@x.io (Ann\rbob@y.io",
            vec![
                (1, "ann@x.io (Ann", "ann@x.io (Ann", true),
                (2, "bob@y.io", "bob@y.io", false),
            ],
        ),
        (
            "stray closer",
            "ann@x.io>",
            vec![(1, "ann@x.io>", "ann@x.io>", true)],
        ),
        (
            "unicode",
            "Jörg <jörg@bücher.de>",
            vec![(1, "Jörg <jörg@bücher.de>", "jörg@bücher.de", false)],
        ),
    ];
    for (name, text, want) in cases {
        assert_eq!(parse(text), want, "{name}");
    }
}

#[test]
fn validate_checks_balance_then_address() {
    let cases: &[(&str, Result<&str, InvalidReason>)] = &[
        ("Ann Lee <Ann@X.io>", Ok("Ann@x.io")),
        ("\"Lee, Ann\" <ann@bücher.de>", Ok("ann@xn--bcher-kva.de")),
        ("Ann <ann@x.io", Err(InvalidReason::Unbalanced)),
        ("\"ann@x.io", Err(InvalidReason::Unbalanced)),
        ("ann@x.io)", Err(InvalidReason::Unbalanced)),
        ("ann@x.io (Ann)", Err(InvalidReason::Comment)),
        ("\"john doe\"@x.io", Err(InvalidReason::QuotedLocalPart)),
        ("<>", Err(InvalidReason::Empty)),
        ("Ann", Err(InvalidReason::MissingAt)),
    ];
    for &(text, want) in cases {
        let all: Vec<Entry<'_>> = entries(text).collect();
        assert_eq!(all.len(), 1, "{text:?}");
        let got = all[0].validate();
        assert_eq!(
            got.as_ref().map(|a| a.as_str()),
            want.as_ref().map(|s| *s),
            "{text:?}"
        );
    }
}

#[test]
fn very_long_line_is_linear() {
    let n = 100_000;
    let text: String = (0..n).map(|i| format!("user{i}@example.com,")).collect();
    let mut count = 0;
    let mut last = None;
    for e in entries(&text) {
        count += 1;
        last = Some(e);
    }
    assert_eq!(count, n);
    let last = last.expect("entries");
    assert_eq!((last.line, last.raw), (1, "user99999@example.com"));
    // Other shapes of one long line must stay linear too (quadratic would hang here).
    let shapes: &[(&str, &str)] = &[
        ("words without @", "word "),
        ("bare brackets", "<a@x.io> "),
        ("display names", "Ann <a@x.io>, "),
        ("quoted words", "\"q\" "),
        ("comments", "(c) "),
        ("addresses with comments", "a@x.io (c) "),
        ("stray closers", "a> "),
    ];
    for &(name, unit) in shapes {
        let line = unit.repeat(n);
        assert_eq!(entries(&line).count(), n, "{name}");
    }
}

#[test]
fn a_million_lines() {
    let n = 1_000_000;
    let text = "ann@example.com\n".repeat(n);
    let mut count = 0u64;
    let mut last_line = 0;
    for e in entries(&text) {
        count += 1;
        last_line = e.line;
    }
    assert_eq!((count, last_line), (n as u64, n as u64));
}
