//! Which language a page is shown in: the browser's `Accept-Language`
//! preferences, each tried along its BCP 47 tag (`pt-BR`, then `pt`), then
//! `en`, the language every deployment has.

/// The language every deployment ships, and the last fallback.
pub const DEFAULT_LOCALE: &str = "en";

/// The language ranges of an `Accept-Language` value, most wanted first
/// (ties keep their order; `*` and ranges with `q=0` are left out).
pub fn preferences(accept_language: &str) -> Vec<String> {
    super::ranked(accept_language)
        .into_iter()
        .filter(|tag| tag.len() <= 35 && tag.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        .collect()
}

/// A tag and the shorter tags it falls back to: `zh-hant-tw`, `zh-hant`, `zh`
/// (a single-letter subtag such as `x` goes with the one after it).
pub fn fallbacks(tag: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(tag);
    std::iter::from_fn(move || {
        let current = rest?;
        let mut shorter = current.rsplit_once('-').map(|(head, _)| head);
        while let Some(head) = shorter {
            match head.rsplit_once('-') {
                Some((before, last)) if last.len() == 1 => shorter = Some(before),
                _ => break,
            }
        }
        rest = shorter;
        Some(current)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preferences_follow_their_weights_and_drop_refusals() {
        let table: [(&str, &[&str]); 6] = [
            (
                "fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5",
                &["fr-ch", "fr", "en", "de"],
            ),
            ("en;q=0.2, pt-BR", &["pt-br", "en"]),
            ("de;q=0, en", &["en"]),
            ("", &[]),
            ("en;q=2, <script>, fr", &["fr"]),
            ("es;q=0.8, it;q=0.8", &["es", "it"]),
        ];
        for (header, expected) in table {
            assert_eq!(preferences(header), expected, "{header}");
        }
    }

    #[test]
    fn a_tag_falls_back_to_each_shorter_tag() {
        let chain: Vec<&str> = fallbacks("zh-hant-tw").collect();
        assert_eq!(chain, ["zh-hant-tw", "zh-hant", "zh"]);
        let chain: Vec<&str> = fallbacks("de-x-old").collect();
        assert_eq!(chain, ["de-x-old", "de"]);
        let chain: Vec<&str> = fallbacks("en").collect();
        assert_eq!(chain, ["en"]);
    }
}
