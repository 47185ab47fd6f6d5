//! Languages: BCP 47 tags as an import or a browser gives them, the
//! fallback along a tag (`fr-CA` → `fr` → `en`), picking the best of the
//! locales we have templates for, the `Accept-Language` header, and dates
//! written the way each language writes them. Pure logic, no I/O: the
//! email templates and the accept page both pick their language here.

use chrono::{Datelike, NaiveDate};

/// The locale every template set has, and the end of every fallback chain.
pub const DEFAULT_LOCALE: &str = "en";

/// The longest tag we keep (RFC 5646 recommends room for 35 characters).
pub const MAX_TAG_CHARS: usize = 35;

/// A well-formed language tag in its canonical case (`de`, `fr-CA`,
/// `zh-Hant-TW`): the language in lower case, a script in title case, a
/// region in upper case, everything else in lower case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LanguageTag(String);

/// A tag that is not a well-formed BCP 47 language tag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a language tag like `en`, `de` or `fr-CA` (BCP 47)")]
pub struct TagError(pub String);

impl LanguageTag {
    /// Checks and normalises a tag; `_` is taken for `-` (`pt_BR`).
    /// The language is an ISO 639 code of 2 or 3 letters (the 5 to 8
    /// letter codes BCP 47 reserves are refused: `english` is a mistake,
    /// not a language); each further subtag 1 to 8 letters or digits.
    pub fn parse(raw: &str) -> Result<LanguageTag, TagError> {
        let refuse = || TagError(raw.to_owned());
        let raw_trimmed = raw.trim();
        if raw_trimmed.is_empty() || raw_trimmed.chars().count() > MAX_TAG_CHARS {
            return Err(refuse());
        }
        let mut parts = Vec::new();
        for (i, subtag) in raw_trimmed.split(['-', '_']).enumerate() {
            let ok_chars = subtag.chars().all(|c| c.is_ascii_alphanumeric());
            if subtag.is_empty() || subtag.len() > 8 || !ok_chars {
                return Err(refuse());
            }
            if i == 0 {
                let letters = subtag.chars().all(|c| c.is_ascii_alphabetic());
                if !letters || !matches!(subtag.len(), 2 | 3) {
                    return Err(refuse());
                }
            }
            parts.push(normalise_subtag(i, subtag));
        }
        Ok(LanguageTag(parts.join("-")))
    }

    /// The tag as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The primary language (`fr` of `fr-CA`).
    pub fn language(&self) -> &str {
        self.0.split('-').next().unwrap_or(&self.0)
    }

    /// The tag and each shorter prefix, ending with [`DEFAULT_LOCALE`]:
    /// `zh-Hant-TW` → `zh-Hant-TW`, `zh-Hant`, `zh`, `en`.
    pub fn fallback_chain(&self) -> Vec<String> {
        let parts: Vec<&str> = self.0.split('-').collect();
        let mut chain: Vec<String> = (1..=parts.len())
            .rev()
            .map(|n| parts[..n].join("-"))
            // A prefix that ends in a singleton (`x` of `en-x-foo`) is not a tag.
            .filter(|t| t.rsplit('-').next().is_some_and(|last| last.len() > 1))
            .collect();
        if !chain.iter().any(|t| t == DEFAULT_LOCALE) {
            chain.push(DEFAULT_LOCALE.to_owned());
        }
        chain
    }
}

impl std::fmt::Display for LanguageTag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn normalise_subtag(index: usize, subtag: &str) -> String {
    let alpha = subtag.chars().all(|c| c.is_ascii_alphabetic());
    match (index, subtag.len()) {
        (0, _) => subtag.to_ascii_lowercase(),
        (_, 4) if alpha => {
            let lower = subtag.to_ascii_lowercase();
            let mut chars = lower.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        }
        (_, 2) if alpha => subtag.to_ascii_uppercase(),
        _ => subtag.to_ascii_lowercase(),
    }
}

/// The first locale of `tag`'s fallback chain that `available` holds
/// (compared case-insensitively), as `available` spells it; `None` when
/// not even [`DEFAULT_LOCALE`] is there.
pub fn pick<'a>(tag: &LanguageTag, available: &[&'a str]) -> Option<&'a str> {
    tag.fallback_chain().iter().find_map(|candidate| {
        available
            .iter()
            .find(|a| a.eq_ignore_ascii_case(candidate))
            .copied()
    })
}

/// [`pick`] for an optional, unchecked tag (a stored import's locale): a
/// missing or malformed one means [`DEFAULT_LOCALE`].
pub fn pick_or_default<'a>(tag: Option<&str>, available: &[&'a str]) -> Option<&'a str> {
    let tag = tag
        .and_then(|t| LanguageTag::parse(t).ok())
        .unwrap_or_else(|| LanguageTag(DEFAULT_LOCALE.to_owned()));
    pick(&tag, available)
}

/// The languages of an `Accept-Language` header (RFC 9110), best first:
/// sorted by `q` (ties keep the header's order), without `q=0`, `*` and
/// malformed entries.
pub fn parse_accept_language(header: &str) -> Vec<LanguageTag> {
    let mut ranked: Vec<(u16, usize, LanguageTag)> = header
        .split(',')
        .enumerate()
        .filter_map(|(position, item)| {
            let mut pieces = item.split(';');
            let tag = pieces.next()?.trim();
            let mut weight = 1000u16;
            for param in pieces {
                let (key, value) = param.split_once('=')?;
                if key.trim().eq_ignore_ascii_case("q") {
                    weight = quality(value.trim())?;
                }
            }
            if weight == 0 || tag == "*" {
                return None;
            }
            Some((weight, position, LanguageTag::parse(tag).ok()?))
        })
        .collect();
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    ranked.into_iter().map(|(_, _, tag)| tag).collect()
}

/// A `q` value as thousandths (`0.8` → 800); `None` when malformed.
fn quality(value: &str) -> Option<u16> {
    let parsed: f64 = value.parse().ok()?;
    (0.0..=1.0)
        .contains(&parsed)
        .then(|| (parsed * 1000.0).round() as u16)
}

/// The best of `available` for an `Accept-Language` header: the first
/// language the reader accepts that we have exactly or by its primary
/// language (`de-AT` finds `de`), else [`DEFAULT_LOCALE`] if available.
pub fn negotiate<'a>(header: &str, available: &[&'a str]) -> Option<&'a str> {
    parse_accept_language(header)
        .iter()
        .find_map(|tag| {
            let chain = tag.fallback_chain();
            chain
                .iter()
                .filter(|c| c.as_str() != DEFAULT_LOCALE || tag.language() == DEFAULT_LOCALE)
                .find_map(|c| available.iter().find(|a| a.eq_ignore_ascii_case(c)))
                .copied()
        })
        .or_else(|| pick_or_default(None, available))
}

/// How a language writes a date in running text ("3 December 2026",
/// "3. Dezember 2026"); a language we have no table for gets the
/// unambiguous ISO form (`2026-12-03`).
pub fn format_date(date: NaiveDate, locale: &str) -> String {
    let language = locale.split(['-', '_']).next().unwrap_or(locale);
    let (day, year) = (date.day(), date.year());
    let month = date.month0() as usize;
    let language = language.to_ascii_lowercase();
    match language.as_str() {
        "en" if locale.eq_ignore_ascii_case("en-US") => {
            format!("{} {day}, {year}", EN_MONTHS[month])
        }
        "en" => format!("{day} {} {year}", EN_MONTHS[month]),
        "de" => format!("{day}. {} {year}", DE_MONTHS[month]),
        "fr" => {
            let day = if day == 1 {
                "1er".into()
            } else {
                day.to_string()
            };
            format!("{day} {} {year}", FR_MONTHS[month])
        }
        "es" => format!("{day} de {} de {year}", ES_MONTHS[month]),
        "nl" => format!("{day} {} {year}", NL_MONTHS[month]),
        _ => date.format("%Y-%m-%d").to_string(),
    }
}

const EN_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DE_MONTHS: [&str; 12] = [
    "Januar",
    "Februar",
    "März",
    "April",
    "Mai",
    "Juni",
    "Juli",
    "August",
    "September",
    "Oktober",
    "November",
    "Dezember",
];
const FR_MONTHS: [&str; 12] = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
];
const ES_MONTHS: [&str; 12] = [
    "enero",
    "febrero",
    "marzo",
    "abril",
    "mayo",
    "junio",
    "julio",
    "agosto",
    "septiembre",
    "octubre",
    "noviembre",
    "diciembre",
];
const NL_MONTHS: [&str; 12] = [
    "januari",
    "februari",
    "maart",
    "april",
    "mei",
    "juni",
    "juli",
    "augustus",
    "september",
    "oktober",
    "november",
    "december",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(raw: &str) -> LanguageTag {
        LanguageTag::parse(raw).unwrap()
    }

    #[test]
    fn tags_are_normalised_to_their_canonical_case() {
        let cases = [
            ("de", "de"),
            ("DE", "de"),
            ("fr-ca", "fr-CA"),
            ("pt_BR", "pt-BR"),
            ("zh-hant-tw", "zh-Hant-TW"),
            ("es-419", "es-419"),
            (" en-GB ", "en-GB"),
            ("de-CH-1996", "de-CH-1996"),
        ];
        for (raw, want) in cases {
            assert_eq!(tag(raw).as_str(), want, "{raw}");
        }
    }

    #[test]
    fn malformed_tags_are_refused() {
        let long = format!("en-{}", "abcdefgh-".repeat(5));
        for raw in [
            "",
            " ",
            "e",
            "english-language",
            "1234",
            "en--GB",
            "en-",
            "-en",
            "en GB",
            "en-GB!",
            "dé",
            "en-abcdefghi",
            &long,
        ] {
            assert!(LanguageTag::parse(raw).is_err(), "{raw:?} accepted");
        }
    }

    #[test]
    fn the_fallback_chain_shortens_the_tag_and_ends_in_english() {
        assert_eq!(tag("fr-CA").fallback_chain(), ["fr-CA", "fr", "en"]);
        assert_eq!(
            tag("zh-Hant-TW").fallback_chain(),
            ["zh-Hant-TW", "zh-Hant", "zh", "en"]
        );
        assert_eq!(tag("en-GB").fallback_chain(), ["en-GB", "en"]);
        assert_eq!(tag("en").fallback_chain(), ["en"]);
        assert_eq!(
            tag("de-x-formal").fallback_chain(),
            ["de-x-formal", "de", "en"]
        );
    }

    #[test]
    fn picking_follows_the_chain_to_a_locale_we_have() {
        let available = ["en", "de", "fr"];
        assert_eq!(pick(&tag("fr-CA"), &available), Some("fr"));
        assert_eq!(pick(&tag("de-AT"), &available), Some("de"));
        assert_eq!(pick(&tag("ja"), &available), Some("en"));
        assert_eq!(pick(&tag("ja"), &["de"]), None);
        assert_eq!(pick(&tag("pt-BR"), &["en", "pt-br"]), Some("pt-br"));
        assert_eq!(pick_or_default(None, &available), Some("en"));
        assert_eq!(pick_or_default(Some("not a tag"), &available), Some("en"));
        assert_eq!(pick_or_default(Some("de-DE"), &available), Some("de"));
    }

    #[test]
    fn accept_language_is_ranked_by_quality_then_order() {
        let ranked: Vec<String> =
            parse_accept_language("fr-CA;q=0.8, de , en;q=0.8, *;q=0.5, it;q=0, nonsense!!")
                .into_iter()
                .map(|t| t.to_string())
                .collect();
        assert_eq!(ranked, ["de", "fr-CA", "en"]);
        assert!(parse_accept_language("").is_empty());
        assert!(parse_accept_language("de;q=2").is_empty());
    }

    #[test]
    fn negotiation_finds_the_best_locale_we_have() {
        let available = ["en", "de"];
        assert_eq!(negotiate("de-AT,en;q=0.5", &available), Some("de"));
        assert_eq!(
            negotiate("fr-CA, fr;q=0.9, de;q=0.8", &available),
            Some("de")
        );
        assert_eq!(negotiate("en-GB, de;q=0.9", &available), Some("en"));
        assert_eq!(negotiate("ja", &available), Some("en"));
        assert_eq!(negotiate("", &available), Some("en"));
    }

    #[test]
    fn dates_are_written_the_way_each_language_writes_them() {
        let date = NaiveDate::from_ymd_opt(2026, 12, 3).unwrap();
        assert_eq!(format_date(date, "en"), "3 December 2026");
        assert_eq!(format_date(date, "en-US"), "December 3, 2026");
        assert_eq!(format_date(date, "de"), "3. Dezember 2026");
        assert_eq!(format_date(date, "de-CH"), "3. Dezember 2026");
        assert_eq!(format_date(date, "fr"), "3 décembre 2026");
        assert_eq!(format_date(date, "es"), "3 de diciembre de 2026");
        assert_eq!(format_date(date, "ja"), "2026-12-03");
        let first = NaiveDate::from_ymd_opt(2027, 3, 1).unwrap();
        assert_eq!(format_date(first, "fr"), "1er mars 2027");
        assert_eq!(format_date(first, "de"), "1. März 2027");
    }
}
