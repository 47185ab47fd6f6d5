//! The invitation email: subject, text and HTML from templates, one set
//! per locale (`templates/<locale>/`), picked along the import's language
//! tag (`fr-CA` → `fr` → `en`). Files in `EMAIL_TEMPLATE_DIR` override the
//! built-in ones: `<dir>/<locale>/<file>` for a locale (a new folder adds a
//! language), and `<dir>/<file>` for English.

use super::provider::SharedContent;
use crate::i18n::{self, DEFAULT_LOCALE};
use minijinja::{Environment, UndefinedBehavior, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// The files of one locale's template set.
pub const FILES: [&str; 3] = ["subject.txt", "body.txt", "body.html"];

/// The variables every template may use (all always defined; an empty
/// string for an absent option).
pub const VARIABLES: [&str; 7] = [
    "account_name",
    "invited_by",
    "product_name",
    "email",
    "accept_url",
    "expires_at",
    "message",
];

/// The template sets built into the binary, by locale.
pub const SHIPPED: [(&str, [&str; 3]); 2] = [
    (
        "en",
        [
            include_str!("templates/en/subject.txt"),
            include_str!("templates/en/body.txt"),
            include_str!("templates/en/body.html"),
        ],
    ),
    (
        "de",
        [
            include_str!("templates/de/subject.txt"),
            include_str!("templates/de/body.txt"),
            include_str!("templates/de/body.html"),
        ],
    ),
];

/// The values an invitation email is made of.
#[derive(Debug, Clone)]
pub struct EmailValues<'a> {
    pub account_name: &'a str,
    /// Who invited the person ("" when the import did not say).
    pub invited_by: &'a str,
    /// The product's name (`PRODUCT_NAME`; "" for none).
    pub product_name: &'a str,
    pub email: &'a str,
    pub accept_url: &'a str,
    /// The expiry, written for the locale ("3 December 2026").
    pub expires_at: &'a str,
    /// The administrator's message for this import ("" for none).
    pub message: &'a str,
}

impl EmailValues<'_> {
    fn pairs(&self) -> [(&'static str, &str); 7] {
        [
            ("account_name", self.account_name),
            ("invited_by", self.invited_by),
            ("product_name", self.product_name),
            ("email", self.email),
            ("accept_url", self.accept_url),
            ("expires_at", self.expires_at),
            ("message", self.message),
        ]
    }

    /// Which optional values are present: the templates branch on them,
    /// so each combination has its own shared content.
    fn shape(&self) -> Shape {
        Shape {
            invited_by: !self.invited_by.is_empty(),
            product_name: !self.product_name.is_empty(),
            message: !self.message.is_empty(),
        }
    }
}

/// The optional values an email has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Shape {
    invited_by: bool,
    product_name: bool,
    message: bool,
}

/// A rendered email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
    /// The content every email of the same locale and shape shares, with
    /// [`substitutions`] placeholders (for providers that substitute).
    pub shared: Arc<SharedContent>,
}

/// Every locale's templates, checked once at start.
pub struct Templates {
    env: Environment<'static>,
    locales: Vec<String>,
    shared: BTreeMap<(String, Shape), Arc<SharedContent>>,
}

/// A template that does not load or render.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read template {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the template folder {0} lacks {1} (a new locale needs all of subject.txt, body.txt and body.html)")]
    Missing(String, &'static str),
    #[error("template error: {0:#}")]
    Render(#[from] minijinja::Error),
}

impl Templates {
    /// The built-in templates, with the files of `dir` laid over them.
    pub fn load(dir: Option<&Path>) -> Result<Templates, TemplateError> {
        let mut sources: BTreeMap<String, [String; 3]> = SHIPPED
            .iter()
            .map(|(locale, files)| ((*locale).to_owned(), files.map(str::to_owned)))
            .collect();
        if let Some(dir) = dir {
            overlay(dir, &mut sources)?;
        }
        let mut env = environment();
        for (locale, files) in &sources {
            for (name, source) in FILES.iter().zip(files) {
                env.add_template_owned(format!("{locale}/{name}"), source.clone())?;
            }
        }
        let mut templates = Templates {
            env,
            locales: sources.into_keys().collect(),
            shared: BTreeMap::new(),
        };
        templates.build_shared()?;
        Ok(templates)
    }

    /// The locales there are templates for, sorted.
    pub fn locales(&self) -> Vec<&str> {
        self.locales.iter().map(String::as_str).collect()
    }

    /// The locale an import's language tag gets: the first of its
    /// fallback chain we have (a missing or malformed tag gets English).
    pub fn locale_for(&self, tag: Option<&str>) -> &str {
        i18n::pick_or_default(tag, &self.locales()).unwrap_or(DEFAULT_LOCALE)
    }

    /// The variables each file of `locale` uses, by file name.
    pub fn variables(
        &self,
        locale: &str,
    ) -> Result<BTreeMap<&'static str, Vec<String>>, minijinja::Error> {
        FILES
            .iter()
            .map(|name| {
                let template = self.env.get_template(&format!("{locale}/{name}"))?;
                let mut vars: Vec<String> =
                    template.undeclared_variables(false).into_iter().collect();
                vars.sort();
                Ok((*name, vars))
            })
            .collect()
    }

    /// Renders one email in `locale` (one of [`Templates::locales`]).
    pub fn render(
        &self,
        locale: &str,
        values: &EmailValues<'_>,
    ) -> Result<Rendered, minijinja::Error> {
        let ctx: BTreeMap<&str, Value> = values
            .pairs()
            .into_iter()
            .map(|(key, value)| (key, Value::from(value)))
            .collect();
        let (subject, text, html) = self.render_files(locale, &Value::from(ctx))?;
        let shared = self
            .shared
            .get(&(locale.to_owned(), values.shape()))
            .cloned()
            .ok_or_else(|| {
                minijinja::Error::new(
                    minijinja::ErrorKind::TemplateNotFound,
                    format!("no templates for locale {locale}"),
                )
            })?;
        Ok(Rendered {
            subject,
            text,
            html,
            shared,
        })
    }

    fn render_files(
        &self,
        locale: &str,
        ctx: &Value,
    ) -> Result<(String, String, String), minijinja::Error> {
        let render = |name: &str| {
            self.env
                .get_template(&format!("{locale}/{name}"))?
                .render(ctx)
        };
        Ok((
            render("subject.txt")?.trim().to_owned(),
            render("body.txt")?,
            render("body.html")?,
        ))
    }

    /// For every locale and shape, the email with each value left as a
    /// placeholder `-name-` (plain text) or `-name_html-` (HTML);
    /// [`substitutions`] gives the values. Rendering them all here also
    /// checks every template once, at start.
    fn build_shared(&mut self) -> Result<(), minijinja::Error> {
        let mut shared = BTreeMap::new();
        for locale in &self.locales {
            for bits in 0..8u8 {
                let shape = Shape {
                    invited_by: bits & 1 != 0,
                    product_name: bits & 2 != 0,
                    message: bits & 4 != 0,
                };
                let present = |key: &str| match key {
                    "invited_by" => shape.invited_by,
                    "product_name" => shape.product_name,
                    "message" => shape.message,
                    _ => true,
                };
                let placeholders = |html: bool| -> Value {
                    let map: BTreeMap<&str, Value> = VARIABLES
                        .iter()
                        .map(|key| {
                            let value = match (present(key), html) {
                                (false, _) => String::new(),
                                (true, false) => format!("-{key}-"),
                                (true, true) => format!("-{key}_html-"),
                            };
                            (*key, Value::from_safe_string(value))
                        })
                        .collect();
                    Value::from(map)
                };
                let (subject, text, _) = self.render_files(locale, &placeholders(false))?;
                let (_, _, html) = self.render_files(locale, &placeholders(true))?;
                let content = SharedContent {
                    subject,
                    text,
                    html,
                };
                shared.insert((locale.clone(), shape), Arc::new(content));
            }
        }
        self.shared = shared;
        Ok(())
    }
}

/// Lays the files of `dir` over `sources`: `<dir>/<file>` over English,
/// `<dir>/<locale>/<file>` over (or as) that locale.
fn overlay(dir: &Path, sources: &mut BTreeMap<String, [String; 3]>) -> Result<(), TemplateError> {
    let read = |path: &Path| {
        std::fs::read_to_string(path).map_err(|source| TemplateError::Read {
            path: path.display().to_string(),
            source,
        })
    };
    if let Some(english) = sources.get_mut(DEFAULT_LOCALE) {
        for (name, slot) in FILES.iter().zip(english.iter_mut()) {
            let path = dir.join(name);
            if path.is_file() {
                *slot = read(&path)?;
            }
        }
    }
    let entries = std::fs::read_dir(dir).map_err(|source| TemplateError::Read {
        path: dir.display().to_string(),
        source,
    })?;
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(tag) = path
            .is_dir()
            .then(|| path.file_name().and_then(|n| n.to_str()))
            .flatten()
            .and_then(|n| i18n::LanguageTag::parse(n).ok())
        else {
            continue;
        };
        let locale = tag.to_string();
        let mut files: [Option<String>; 3] = match sources.get(&locale) {
            Some(shipped) => shipped.clone().map(Some),
            None => [None, None, None],
        };
        for (name, slot) in FILES.iter().zip(files.iter_mut()) {
            let file = path.join(name);
            if file.is_file() {
                *slot = Some(read(&file)?);
            }
        }
        let mut complete = Vec::with_capacity(3);
        for (name, file) in FILES.iter().zip(files) {
            complete.push(
                file.ok_or_else(|| TemplateError::Missing(path.display().to_string(), name))?,
            );
        }
        let [subject, text, html]: [String; 3] = complete
            .try_into()
            .map_err(|_| TemplateError::Missing(path.display().to_string(), "subject.txt"))?;
        sources.insert(locale, [subject, text, html]);
    }
    Ok(())
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    // Every variable is always given, so an unknown name is a typo: it
    // fails at start instead of rendering as nothing.
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_trim_blocks(true);
    env.set_keep_trailing_newline(true);
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") {
            minijinja::AutoEscape::Html
        } else {
            minijinja::AutoEscape::None
        }
    });
    // minijinja's own HTML escaping also escapes `/`, which mangles the
    // accept link's text; escape the five characters that matter.
    env.set_formatter(|out, state, value| {
        if state.auto_escape() == minijinja::AutoEscape::Html && !value.is_safe() {
            let text = value.to_string();
            out.write_str(&html_escape(&text))
                .map_err(|_| minijinja::Error::from(minijinja::ErrorKind::WriteFailure))
        } else {
            minijinja::escape_formatter(out, state, value)
        }
    });
    env
}

/// The per-recipient values for the shared content's placeholders.
pub fn substitutions(values: &EmailValues<'_>) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for (key, value) in values.pairs() {
        map.insert(key.to_owned(), value.to_owned());
        map.insert(format!("{key}_html"), html_escape(value));
    }
    map
}

fn html_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
#[path = "template_tests.rs"]
mod tests;
