//! The invitation email: subject, text and HTML from templates, with
//! built-in defaults that files in `EMAIL_TEMPLATE_DIR` override.

use super::provider::SharedContent;
use minijinja::{context, Environment};
use std::collections::BTreeMap;
use std::path::Path;

const NAMES: [(&str, &str); 3] = [
    ("subject.txt", include_str!("templates/subject.txt")),
    ("body.txt", include_str!("templates/body.txt")),
    ("body.html", include_str!("templates/body.html")),
];

/// The values an invitation email is made of.
#[derive(Debug, Clone)]
pub struct EmailValues<'a> {
    pub account_name: &'a str,
    pub email: &'a str,
    pub accept_url: &'a str,
    pub expires_at: &'a str,
    /// The administrator's message for this import ("" for none).
    pub message: &'a str,
}

/// A rendered email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The three templates, checked once at start.
pub struct Templates {
    env: Environment<'static>,
}

/// A template that does not load or render.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read template {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("template error: {0:#}")]
    Render(#[from] minijinja::Error),
}

impl Templates {
    /// The built-in templates, each replaced by a file of the same name in
    /// `dir` when there is one (`subject.txt`, `body.txt`, `body.html`).
    pub fn load(dir: Option<&Path>) -> Result<Templates, TemplateError> {
        let mut env = Environment::new();
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
        for (name, default) in NAMES {
            let source = match dir.map(|d| d.join(name)).filter(|p| p.exists()) {
                Some(path) => {
                    std::fs::read_to_string(&path).map_err(|source| TemplateError::Read {
                        path: path.display().to_string(),
                        source,
                    })?
                }
                None => default.to_owned(),
            };
            env.add_template_owned(name, source)?;
        }
        let templates = Templates { env };
        templates.render(&EmailValues {
            account_name: "Acme",
            email: "ann@example.com",
            accept_url: "http://127.0.0.1/accept/token",
            expires_at: "2026-12-03",
            message: "Welcome aboard",
        })?;
        Ok(templates)
    }

    /// Renders one email.
    pub fn render(&self, values: &EmailValues<'_>) -> Result<Rendered, minijinja::Error> {
        let ctx = context! {
            account_name => values.account_name,
            email => values.email,
            accept_url => values.accept_url,
            expires_at => values.expires_at,
            message => values.message,
        };
        Ok(Rendered {
            subject: self
                .env
                .get_template("subject.txt")?
                .render(&ctx)?
                .trim()
                .to_owned(),
            text: self.env.get_template("body.txt")?.render(&ctx)?,
            html: self.env.get_template("body.html")?.render(&ctx)?,
        })
    }

    /// The email with every value left as a placeholder `-name-` (plain
    /// text) or `-name_html-` (HTML), for providers that substitute per
    /// recipient; [`substitutions`] gives the values. (The message block is
    /// always present here; with no message its placeholder becomes empty.)
    pub fn shared(&self) -> Result<SharedContent, minijinja::Error> {
        let text_ctx = context! {
            account_name => "-account_name-", email => "-email-",
            accept_url => "-accept_url-", expires_at => "-expires_at-",
            message => "-message-",
        };
        let html_ctx = context! {
            account_name => minijinja::Value::from_safe_string("-account_name_html-".into()),
            email => minijinja::Value::from_safe_string("-email_html-".into()),
            accept_url => minijinja::Value::from_safe_string("-accept_url_html-".into()),
            expires_at => minijinja::Value::from_safe_string("-expires_at_html-".into()),
            message => minijinja::Value::from_safe_string("-message_html-".into()),
        };
        Ok(SharedContent {
            subject: self
                .env
                .get_template("subject.txt")?
                .render(&text_ctx)?
                .trim()
                .to_owned(),
            text: self.env.get_template("body.txt")?.render(&text_ctx)?,
            html: self.env.get_template("body.html")?.render(&html_ctx)?,
        })
    }
}

/// The per-recipient values for [`Templates::shared`]'s placeholders.
pub fn substitutions(values: &EmailValues<'_>) -> BTreeMap<String, String> {
    let pairs = [
        ("account_name", values.account_name),
        ("email", values.email),
        ("accept_url", values.accept_url),
        ("expires_at", values.expires_at),
        ("message", values.message),
    ];
    let mut map = BTreeMap::new();
    for (key, value) in pairs {
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
mod tests {
    use super::*;

    fn values() -> EmailValues<'static> {
        EmailValues {
            account_name: "Smith & <Sons>",
            email: "ann@x.io",
            accept_url: "https://app.test/accept/abc",
            expires_at: "2026-12-03",
            message: "See you <soon> & welcome",
        }
    }

    #[test]
    fn the_default_email_names_the_account_link_and_expiry_and_escapes_html() {
        let templates = Templates::load(None).unwrap();
        let email = templates.render(&values()).unwrap();
        assert_eq!(email.subject, "You're invited to join Smith & <Sons>");
        assert!(email.text.contains("https://app.test/accept/abc"));
        assert!(email.text.contains("2026-12-03"));
        assert!(email.html.contains("Smith &amp; &lt;Sons&gt;"));
        assert!(email.html.contains("href=\"https://app.test/accept/abc\""));
    }

    #[test]
    fn a_file_in_the_template_dir_overrides_the_default() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("subject.txt"),
            "Join {{ account_name }} now",
        )
        .unwrap();
        let templates = Templates::load(Some(dir.path())).unwrap();
        let email = templates.render(&values()).unwrap();
        assert_eq!(email.subject, "Join Smith & <Sons> now");
        assert!(email.text.contains("has invited you"));
    }

    #[test]
    fn a_broken_template_is_refused_at_load() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("body.txt"), "{{ accept_url ").unwrap();
        assert!(Templates::load(Some(dir.path())).is_err());
    }

    #[test]
    fn substituting_the_shared_content_gives_the_rendered_email() {
        let templates = Templates::load(None).unwrap();
        let mut shared = templates.shared().unwrap();
        for (key, value) in substitutions(&values()) {
            let placeholder = format!("-{key}-");
            shared.text = shared.text.replace(&placeholder, &value);
            shared.html = shared.html.replace(&placeholder, &value);
            shared.subject = shared.subject.replace(&placeholder, &value);
        }
        let rendered = templates.render(&values()).unwrap();
        assert_eq!(shared.text, rendered.text);
        assert_eq!(shared.html, rendered.html);
        assert_eq!(shared.subject, rendered.subject);
    }
}
