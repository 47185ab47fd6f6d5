use super::*;

fn invitation(account_name: &str, message: Option<&str>) -> Page {
    Page::Invitation {
        account_name: account_name.into(),
        email: "ann@x.io".into(),
        message: message.map(Into::into),
        expires_at: Some("2026-12-03T02:18:00Z".into()),
        expires_at_text: Some("2026-12-03 02:18 UTC".into()),
    }
}

#[test]
fn the_accept_page_heads_with_the_account_and_escapes_what_an_import_wrote() {
    let pages = Pages::load(None).unwrap();
    let html = pages
        .render(
            "en",
            &invitation("<b>Smith & Sons</b>", Some("<script>alert(1)</script>")),
        )
        .unwrap();
    assert!(html.starts_with("<!doctype html>\n<html lang=\"en\">"));
    assert!(html.contains("<h1>&lt;b&gt;Smith &amp; Sons&lt;&#x2f;b&gt;</h1>"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"));
    assert!(!html.contains("<script"));
    assert!(html.contains("<form method=\"post\">"));
    assert!(html.contains("<time datetime=\"2026-12-03T02:18:00Z\">2026-12-03 02:18 UTC</time>"));
}

#[test]
fn the_style_element_is_the_one_the_policy_hashes() {
    let pages = Pages::load(None).unwrap();
    let html = pages.render("en", &invitation("Acme", None)).unwrap();
    let start = html.find("<style>").unwrap() + "<style>".len();
    let end = html.find("</style>").unwrap();
    let hash = STANDARD.encode(Sha256::digest(&html.as_bytes()[start..end]));
    assert_eq!(pages.style_source(), format!("'sha256-{hash}'"));
    assert_eq!(html.matches("<style").count(), 1);
    assert!(!html.contains("style=\""));
}

#[test]
fn each_refusal_says_what_happened() {
    let pages = Pages::load(None).unwrap();
    let table = [
        ("not_found", "Invitation not found"),
        ("expired", "Invitation expired"),
        ("revoked", "Invitation withdrawn"),
        ("used", "Invitation already used"),
        ("unavailable", "Invitation unavailable"),
        ("error", "Something went wrong"),
    ];
    for (reason, title) in table {
        let page = Page::Refused {
            reason,
            account_name: None,
            email: None,
            continue_url: None,
        };
        let html = pages.render("en", &page).unwrap();
        assert!(
            html.contains(&format!("<title>{title}</title>")),
            "{reason}"
        );
        assert!(html.contains(&format!("<h1>{title}</h1>")), "{reason}");
    }
}

#[test]
fn a_language_is_picked_along_its_tag_and_falls_back_to_english() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("pt-BR")).unwrap();
    std::fs::write(
        dir.path().join("pt-BR/invitation.html"),
        "{% extends \"layout.html\" %}{% block title %}Junte-se a {{ account_name }}{% endblock %}",
    )
    .unwrap();
    let pages = Pages::load(Some(dir.path())).unwrap();
    assert_eq!(pages.language(["pt-br"]), "pt-BR");
    assert_eq!(pages.language(["pt-br-x-rio"]), "pt-BR");
    assert_eq!(pages.language(["it", "pt-br"]), "pt-BR");
    assert_eq!(pages.language(["de-AT", "pt-br"]), "de");
    assert_eq!(pages.language(["pt"]), "en");
    assert_eq!(pages.language(["fr-ca", "fr"]), "en");
    assert_eq!(pages.language([]), "en");

    let html = pages.render("pt-BR", &invitation("Acme", None)).unwrap();
    assert!(html.contains("<html lang=\"pt-BR\">"), "{html}");
    assert!(html.contains("<title>Junte-se a Acme</title>"));
    // A page the language does not have is the built-in one, in `en`.
    let page = Page::Accepted {
        account_name: "Acme".into(),
        email: "ann@x.io".into(),
        continue_url: None,
    };
    let html = pages.render("pt-BR", &page).unwrap();
    assert!(html.contains("<html lang=\"en\">"));
    assert!(html.contains("You joined Acme"));
}

#[test]
fn files_in_the_template_dir_replace_the_built_in_ones() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("en")).unwrap();
    std::fs::write(dir.path().join("style.css"), "body { color: #000; }").unwrap();
    std::fs::write(
        dir.path().join("en/accepted.html"),
        "{% extends \"layout.html\" %}{% block content %}Welcome, {{ email }}!{% endblock %}",
    )
    .unwrap();
    let pages = Pages::load(Some(dir.path())).unwrap();
    let page = Page::Accepted {
        account_name: "Acme".into(),
        email: "ann@x.io".into(),
        continue_url: None,
    };
    let html = pages.render("en", &page).unwrap();
    assert!(html.contains("<style>body { color: #000; }</style>"));
    assert!(html.contains("Welcome, ann@x.io!"));
    let hash = STANDARD.encode(Sha256::digest(b"body { color: #000; }"));
    assert_eq!(pages.style_source(), format!("'sha256-{hash}'"));
}

#[test]
fn a_broken_template_or_style_is_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("fr")).unwrap();
    std::fs::write(dir.path().join("fr/refused.html"), "{% if reason %}").unwrap();
    assert!(Pages::load(Some(dir.path())).is_err());

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("style.css"), "</style><script>x()</script>").unwrap();
    assert!(matches!(
        Pages::load(Some(dir.path())),
        Err(PageError::Style)
    ));
}
