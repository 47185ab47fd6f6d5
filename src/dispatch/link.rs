//! Where the link in an invitation email points: the built-in accept page
//! (`PUBLIC_BASE_URL/accept/<token>`), or the frontend's own page when
//! `ACCEPT_URL_TEMPLATE` names one (`https://app.example.com/join?token={token}`).

/// The placeholder `ACCEPT_URL_TEMPLATE` must hold once.
pub const TOKEN_PLACEHOLDER: &str = "{token}";

/// How accept links are made; checked once at start, so a bad template
/// stops the dispatcher from starting instead of sending dead links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcceptLink {
    /// `<base>/accept/<token>`: the page this service serves.
    BuiltIn { base: String },
    /// The template with `{token}` replaced: the frontend's page, which
    /// calls the JSON accept endpoints itself.
    Template(String),
}

/// An `ACCEPT_URL_TEMPLATE` that cannot make a working link.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("ACCEPT_URL_TEMPLATE must hold {TOKEN_PLACEHOLDER} exactly once: {0}")]
    Placeholder(String),
    #[error("ACCEPT_URL_TEMPLATE must be an absolute http(s) URL: {0}")]
    NotAbsolute(String),
}

impl AcceptLink {
    /// The link maker for a public base URL and an optional template.
    pub fn parse(public_base_url: &str, template: Option<&str>) -> Result<AcceptLink, LinkError> {
        let Some(template) = template.filter(|t| !t.trim().is_empty()) else {
            return Ok(AcceptLink::BuiltIn {
                base: public_base_url.trim_end_matches('/').to_owned(),
            });
        };
        if template.matches(TOKEN_PLACEHOLDER).count() != 1 {
            return Err(LinkError::Placeholder(template.to_owned()));
        }
        let probe = template.replace(TOKEN_PLACEHOLDER, "token");
        match url::Url::parse(&probe) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
                Ok(AcceptLink::Template(template.to_owned()))
            }
            _ => Err(LinkError::NotAbsolute(template.to_owned())),
        }
    }

    /// The link carrying `token` (tokens are URL-safe base64: no escaping needed).
    pub fn url(&self, token: &str) -> String {
        match self {
            AcceptLink::BuiltIn { base } => format!("{base}/accept/{token}"),
            AcceptLink::Template(template) => template.replace(TOKEN_PLACEHOLDER, token),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_template_links_point_at_the_built_in_page() {
        let link = AcceptLink::parse("https://invite.test/", None).unwrap();
        assert_eq!(link.url("abc"), "https://invite.test/accept/abc");
        let blank = AcceptLink::parse("https://invite.test", Some(" ")).unwrap();
        assert_eq!(blank.url("abc"), "https://invite.test/accept/abc");
    }

    #[test]
    fn a_template_puts_the_token_where_it_says() {
        let link = AcceptLink::parse(
            "https://invite.test",
            Some("https://app.test/join?token={token}"),
        )
        .unwrap();
        assert_eq!(link.url("abc"), "https://app.test/join?token=abc");
    }

    #[test]
    fn a_template_that_cannot_make_a_working_link_is_refused() {
        for bad in [
            "https://app.test/join",
            "https://app.test/{token}/{token}",
            "/join?token={token}",
            "javascript:alert({token})",
            "app.test/join/{token}",
        ] {
            assert!(
                AcceptLink::parse("https://invite.test", Some(bad)).is_err(),
                "{bad}"
            );
        }
    }
}
