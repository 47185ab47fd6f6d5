//! The invitee's pages: the accept page, its confirmation and the refusals,
//! server-rendered from minijinja templates (autoescaped) in one folder per
//! language (`en/` is built in). Files in `ACCEPT_TEMPLATE_DIR` replace the
//! built-in ones of the same name (`style.css`, `<lang>/<page>.html`), and a
//! new `<lang>/` folder adds a language.

pub mod headers;
pub mod locale;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use locale::DEFAULT_LOCALE;
use minijinja::{context, Environment, Value};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

const STYLE: &str = include_str!("templates/style.css");
const BUILT_IN: [(&str, &str); 7] = [
    ("en/layout.html", include_str!("templates/en/layout.html")),
    (
        "en/invitation.html",
        include_str!("templates/en/invitation.html"),
    ),
    (
        "en/accepted.html",
        include_str!("templates/en/accepted.html"),
    ),
    ("en/refused.html", include_str!("templates/en/refused.html")),
    (
        "de/invitation.html",
        include_str!("templates/de/invitation.html"),
    ),
    (
        "de/accepted.html",
        include_str!("templates/de/accepted.html"),
    ),
    ("de/refused.html", include_str!("templates/de/refused.html")),
];
/// The pages every language renders (`layout.html` is what they extend).
const PAGES: [&str; 3] = ["invitation.html", "accepted.html", "refused.html"];

/// What a page shows. Every value from an import (the account name, the
/// message) is escaped by the templates' autoescaping.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "page")]
pub enum Page {
    /// The invitation, with its "Accept invitation" button.
    #[serde(rename = "invitation.html")]
    Invitation {
        account_name: String,
        email: String,
        message: Option<String>,
        /// RFC 3339, for `<time datetime>`.
        expires_at: Option<String>,
        /// The day, written for the page's language (`3 December 2026`,
        /// `3. Dezember 2026`); filled in when the language is known.
        expires_at_text: Option<String>,
    },
    /// The person joined.
    #[serde(rename = "accepted.html")]
    Accepted {
        account_name: String,
        email: String,
        continue_url: Option<String>,
    },
    /// Why the link does not work: `not_found`, `expired`, `revoked`,
    /// `used`, `unavailable` or `error` (ours, try again).
    #[serde(rename = "refused.html")]
    Refused {
        reason: &'static str,
        account_name: Option<String>,
        email: Option<String>,
        continue_url: Option<String>,
    },
}

impl Page {
    fn template(&self) -> &'static str {
        match self {
            Page::Invitation { .. } => "invitation.html",
            Page::Accepted { .. } => "accepted.html",
            Page::Refused { .. } => "refused.html",
        }
    }
}

/// The templates, checked once at start.
pub struct Pages {
    env: Environment<'static>,
    /// Languages with templates: lower-cased tag to folder name.
    locales: BTreeMap<String, String>,
    style_tag: String,
    style_hash: String,
}

/// A template that does not load or render.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("cannot read accept page template {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("accept page style.css must not contain `</style`")]
    Style,
    #[error("accept page template error: {0:#}")]
    Render(#[from] minijinja::Error),
}

impl Pages {
    /// The built-in templates, each replaced by the file of the same name
    /// under `dir` when there is one; every language's pages are rendered
    /// once with sample values, so a broken template stops the start.
    pub fn load(dir: Option<&Path>) -> Result<Pages, PageError> {
        let mut sources: BTreeMap<String, String> = BUILT_IN
            .iter()
            .map(|(name, source)| ((*name).to_owned(), (*source).to_owned()))
            .collect();
        let mut style = STYLE.to_owned();
        if let Some(dir) = dir {
            read_overrides(dir, &mut sources, &mut style)?;
        }
        if style.to_ascii_lowercase().contains("</style") {
            return Err(PageError::Style);
        }
        let names: Arc<BTreeSet<String>> = Arc::new(sources.keys().cloned().collect());
        let mut env = Environment::new();
        env.set_auto_escape_callback(|name| match name.ends_with(".html") {
            true => minijinja::AutoEscape::Html,
            false => minijinja::AutoEscape::None,
        });
        // `{% extends "layout.html" %}` means the layout of the page's own
        // language, or the built-in language's when it has none.
        let known = names.clone();
        env.set_path_join_callback(move |name, parent| {
            let Some((folder, _)) = parent.split_once('/') else {
                return name.into();
            };
            if name.contains('/') {
                return name.into();
            }
            let own = format!("{folder}/{name}");
            match known.contains(&own) {
                true => own.into(),
                false => format!("{DEFAULT_LOCALE}/{name}").into(),
            }
        });
        for (name, source) in sources {
            env.add_template_owned(name, source)?;
        }
        let locales = names
            .iter()
            .filter_map(|name| name.split_once('/'))
            .map(|(folder, _)| (folder.to_ascii_lowercase(), folder.to_owned()))
            .collect();
        let style_hash = STANDARD.encode(Sha256::digest(style.as_bytes()));
        let pages = Pages {
            env,
            locales,
            style_tag: format!("<style>{style}</style>"),
            style_hash,
        };
        pages.check_every_language()?;
        Ok(pages)
    }

    /// The folder of the first language in `preferences` (language ranges,
    /// most wanted first) that has templates, trying each along its tag;
    /// else the built-in `en`.
    pub fn language<'a>(&self, preferences: impl IntoIterator<Item = &'a str>) -> &str {
        preferences
            .into_iter()
            .flat_map(locale::fallbacks)
            .find_map(|tag| self.locales.get(&tag.to_ascii_lowercase()))
            .map_or(DEFAULT_LOCALE, String::as_str)
    }

    /// Renders `page` in the language folder `lang` (from [`Pages::language`]).
    pub fn render(&self, lang: &str, page: &Page) -> Result<String, minijinja::Error> {
        // A language folder without this page shows the built-in one, and
        // says so in `lang`.
        let own = format!("{lang}/{}", page.template());
        let (lang, template) = match self.env.get_template(&own) {
            Ok(template) => (lang, template),
            Err(_) => (
                DEFAULT_LOCALE,
                self.env
                    .get_template(&format!("{DEFAULT_LOCALE}/{}", page.template()))?,
            ),
        };
        template.render(context! {
            lang => lang,
            style_tag => Value::from_safe_string(self.style_tag.clone()),
            ..Value::from_serialize(page)
        })
    }

    /// The `style-src` source that allows the pages' one `<style>` element.
    pub fn style_source(&self) -> String {
        format!("'sha256-{}'", self.style_hash)
    }

    fn check_every_language(&self) -> Result<(), minijinja::Error> {
        let samples = [
            Page::Invitation {
                account_name: "Acme".into(),
                email: "ann@example.com".into(),
                message: Some("Welcome aboard".into()),
                expires_at: Some("2026-12-03T02:18:00Z".into()),
                expires_at_text: Some("2026-12-03 02:18 UTC".into()),
            },
            Page::Accepted {
                account_name: "Acme".into(),
                email: "ann@example.com".into(),
                continue_url: None,
            },
            Page::Refused {
                reason: "used",
                account_name: Some("Acme".into()),
                email: Some("ann@example.com".into()),
                continue_url: None,
            },
        ];
        debug_assert_eq!(samples.len(), PAGES.len());
        for lang in self.locales.values() {
            for page in &samples {
                self.render(lang, page)?;
            }
        }
        Ok(())
    }
}

/// The items of a weighted header (`Accept`, `Accept-Language`), lower-cased,
/// most wanted first (ties keep their order); items with `q=0` or a `q`
/// that is not a weight are left out.
pub(crate) fn ranked(value: &str) -> Vec<String> {
    let mut items: Vec<(u16, usize, String)> = value
        .split(',')
        .enumerate()
        .filter_map(|(position, item)| {
            let mut parts = item.split(';');
            let name = parts.next()?.trim().to_ascii_lowercase();
            let weight = match parts.find_map(|p| p.trim().strip_prefix("q=")) {
                None => 1000,
                Some(q) => {
                    let q: f32 = q.trim().parse().ok()?;
                    if !(0.0..=1.0).contains(&q) {
                        return None;
                    }
                    (q * 1000.0).round() as u16
                }
            };
            (weight > 0 && !name.is_empty()).then_some((weight, position, name))
        })
        .collect();
    items.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    items.into_iter().map(|(_, _, name)| name).collect()
}

/// Reads `style.css` and every `<lang>/<page>.html` under `dir`.
fn read_overrides(
    dir: &Path,
    sources: &mut BTreeMap<String, String>,
    style: &mut String,
) -> Result<(), PageError> {
    let read = |path: &Path| {
        std::fs::read_to_string(path).map_err(|source| PageError::Read {
            path: path.display().to_string(),
            source,
        })
    };
    let css = dir.join("style.css");
    if css.is_file() {
        *style = read(&css)?;
    }
    let entries = std::fs::read_dir(dir).map_err(|source| PageError::Read {
        path: dir.display().to_string(),
        source,
    })?;
    for folder in entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()) {
        let Some(lang) = folder.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if !lang.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            continue;
        }
        for name in PAGES.iter().chain(&["layout.html"]) {
            let path = folder.join(name);
            if path.is_file() {
                sources.insert(format!("{lang}/{name}"), read(&path)?);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
