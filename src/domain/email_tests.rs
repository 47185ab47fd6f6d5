//! Unit tests for [`super::EmailAddress`] and [`super::InvalidReason`].

use super::{EmailAddress, InvalidReason};
use std::collections::HashSet;

/// `n` copies of `c`.
fn rep(c: char, n: usize) -> String {
    std::iter::repeat_n(c, n).collect()
}

/// An address of exactly `total` octets: a 64-octet local part and labels of at most 63.
fn address_of_len(total: usize) -> String {
    let mut domain = String::new();
    let mut left = total - 64 - "@".len() - ".io".len();
    while left > 0 {
        if !domain.is_empty() {
            domain.push('.');
            left -= 1;
        }
        // Never leave exactly one octet: it would become an empty label.
        let n = if left == 64 { 62 } else { left.min(63) };
        domain.push_str(&rep('b', n));
        left -= n;
    }
    let address = format!("{}@{domain}.io", rep('a', 64));
    assert_eq!(address.len(), total, "{address}");
    address
}

#[test]
fn valid_addresses_normalise() {
    let local64 = format!("{}@x.io", rep('a', 64));
    let len254 = address_of_len(254);
    let cases: &[(&str, &str)] = &[
        ("ann@example.com", "ann@example.com"),
        ("  ann@example.com \t", "ann@example.com"),
        ("ann+invites@example.com", "ann+invites@example.com"),
        ("ann.lee@example.com", "ann.lee@example.com"),
        ("a.b.c@example.com", "a.b.c@example.com"),
        ("o'brien@example.ie", "o'brien@example.ie"),
        (
            "x!#$%&'*+/=?^_`{|}~-y@example.com",
            "x!#$%&'*+/=?^_`{|}~-y@example.com",
        ),
        ("ann@my-company.example", "ann@my-company.example"),
        ("ann@mail.eu.example.com", "ann@mail.eu.example.com"),
        ("Ann@Example.COM", "Ann@example.com"),
        ("ann@123.example", "ann@123.example"),
        ("ann@x.io", "ann@x.io"),
        ("ann@bücher.de", "ann@xn--bcher-kva.de"),
        ("ann@BÜCHER.de", "ann@xn--bcher-kva.de"),
        ("ann@例え.jp", "ann@xn--r8jz45g.jp"),
        ("ann@xn--bcher-kva.de", "ann@xn--bcher-kva.de"),
        (&local64, &local64),
        (&len254, &len254),
    ];
    for &(input, want) in cases {
        match EmailAddress::parse(input) {
            Ok(a) => {
                assert_eq!(a.as_str(), want, "input {input:?}");
                assert_eq!(a.to_string(), want, "input {input:?}");
                assert_eq!(format!("{}@{}", a.local_part(), a.domain()), want);
                assert_eq!(a.clone().into_string(), want);
            }
            Err(r) => panic!("{input:?} rejected as {r}"),
        }
    }
}

#[test]
fn invalid_addresses_give_the_most_helpful_reason() {
    use InvalidReason as R;
    let local65 = format!("{}@x.io", rep('a', 65));
    let len255 = address_of_len(255);
    let label64 = format!("ann@{}.io", rep('b', 64));
    let idn_too_long = format!(
        "{}@{}.bücher.de",
        rep('a', 64),
        [rep('b', 63), rep('c', 63), rep('d', 50)].join(".")
    );
    let cases: &[(&str, InvalidReason)] = &[
        ("", R::Empty),
        ("  \t ", R::Empty),
        ("ann", R::MissingAt),
        ("ann lee", R::MissingAt),
        ("ann.example.com", R::MissingAt),
        ("a@b@x.io", R::MultipleAt),
        ("ann lee@x.io", R::Whitespace),
        ("ann@x .io", R::Whitespace),
        ("@x.io", R::MissingLocalPart),
        (&local65, R::LocalPartTooLong),
        ("\"john doe\"@x.io", R::QuotedLocalPart),
        ("\"a@b\"@x.io", R::QuotedLocalPart),
        ("\"a b\"@x.io", R::QuotedLocalPart),
        ("jörg@x.de", R::NonAsciiLocalPart),
        (".ann@x.io", R::BadLocalPart),
        ("ann.@x.io", R::BadLocalPart),
        ("ann..lee@x.io", R::BadLocalPart),
        ("ann,lee@x.io", R::BadLocalPart),
        ("ann\\lee@x.io", R::BadLocalPart),
        ("<ann@x.io>", R::BadLocalPart),
        ("ann(work)@x.io", R::Comment),
        ("ann@x.io(home)", R::Comment),
        ("ann@x.io (Ann Lee)", R::Comment),
        ("ann@[192.0.2.1]", R::DomainLiteral),
        ("ann@[IPv6:::1]", R::DomainLiteral),
        ("ann@", R::MissingDomain),
        ("ann@localhost", R::SingleLabelDomain),
        ("ann@x_y.io", R::BadDomain),
        ("ann@x!.io", R::BadDomain),
        ("ann@bü_cher.de", R::BadDomain),
        ("ann@x..io", R::EmptyDomainLabel),
        ("ann@x.io.", R::EmptyDomainLabel),
        ("ann@.x.io", R::EmptyDomainLabel),
        (&label64, R::DomainLabelTooLong),
        ("ann@-x.io", R::DomainLabelHyphen),
        ("ann@x-.io", R::DomainLabelHyphen),
        ("ann@x.io-", R::DomainLabelHyphen),
        ("ann@1.2.3.4", R::NumericTld),
        ("ann@x.123", R::NumericTld),
        (&len255, R::TooLong),
        (&idn_too_long, R::TooLong),
    ];
    for &(input, want) in cases {
        assert_eq!(EmailAddress::parse(input), Err(want), "input {input:?}");
    }
}

#[test]
fn key_is_case_insensitive_and_as_str_keeps_the_local_part() {
    let cases: &[(&str, &str, &str)] = &[
        ("Ann@X.io", "Ann@x.io", "ann@x.io"),
        ("ann@x.IO", "ann@x.io", "ann@x.io"),
        (
            "ANN.Lee+Tag@Example.COM",
            "ANN.Lee+Tag@example.com",
            "ann.lee+tag@example.com",
        ),
        (
            "ann@BÜCHER.de",
            "ann@xn--bcher-kva.de",
            "ann@xn--bcher-kva.de",
        ),
    ];
    for &(input, as_str, key) in cases {
        let a = EmailAddress::parse(input).expect(input);
        assert_eq!(
            (a.as_str(), a.key().as_str()),
            (as_str, key),
            "input {input:?}"
        );
    }
    let keys: HashSet<String> = ["Ann@X.io", "ann@x.IO"]
        .iter()
        .map(|s| EmailAddress::parse(s).expect(s).key())
        .collect();
    assert_eq!(keys.len(), 1);
}

#[test]
fn reasons_have_unique_snake_case_codes_and_sentences() {
    let mut codes = HashSet::new();
    for &r in InvalidReason::ALL {
        let code = r.code();
        assert!(codes.insert(code), "duplicate code {code}");
        assert!(
            code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{code}"
        );
        assert_eq!(r.to_string(), code);
        assert!(
            !r.description().is_empty() && !r.description().ends_with('.'),
            "{code}"
        );
    }
    assert_eq!(codes.len(), 20, "ALL must list every variant");
    let table: &[(InvalidReason, &str)] = &[
        (InvalidReason::MissingAt, "missing_at"),
        (InvalidReason::QuotedLocalPart, "quoted_local_part"),
        (InvalidReason::Unbalanced, "unbalanced"),
        (InvalidReason::TooLong, "too_long"),
    ];
    for &(r, code) in table {
        assert_eq!(r.code(), code);
    }
    assert_eq!(
        InvalidReason::MissingAt.description(),
        "the entry has no @ sign"
    );
}

#[test]
fn from_str_matches_parse() {
    for input in ["ann@x.io", "nope", "ann@BÜCHER.de"] {
        assert_eq!(input.parse::<EmailAddress>(), EmailAddress::parse(input));
    }
}
