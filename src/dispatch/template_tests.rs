use super::*;
use std::collections::BTreeSet;

fn values() -> EmailValues<'static> {
    EmailValues {
        account_name: "Acme",
        invited_by: "Ann Lee",
        product_name: "Orbit",
        email: "bob@x.io",
        accept_url: "https://app.test/invitations/accept/abc",
        expires_at: "3 December 2026",
        message: "",
    }
}

#[test]
fn the_english_email_names_the_inviter_account_link_and_expiry() {
    let templates = Templates::load(None).unwrap();
    let email = templates.render("en", &values()).unwrap();
    assert_eq!(email.subject, "Ann Lee invited you to join Acme on Orbit");
    assert_eq!(
        email.text,
        "Ann Lee invited you to join Acme on Orbit.\n\n\
         Accept the invitation:\nhttps://app.test/invitations/accept/abc\n\n\
         This invitation expires on 3 December 2026.\n\n\
         You received this email because bob@x.io was invited to Acme. \
         If you weren't expecting it, you can ignore it: nothing happens unless you accept.\n"
    );
    assert!(email.html.contains("<html lang=\"en\">"));
    assert!(email
        .html
        .contains(">Ann Lee invited you to join Acme on Orbit.</h1>"));
    assert!(email
        .html
        .contains("href=\"https://app.test/invitations/accept/abc\""));
    assert!(email
        .html
        .contains("This invitation expires on <strong>3 December 2026</strong>."));
    assert_eq!(email.html.matches(">Accept the invitation</a>").count(), 1);
    assert!(!email.html.contains("<img"), "no images, external or not");
}

#[test]
fn the_german_email_is_written_in_german_with_sie() {
    let templates = Templates::load(None).unwrap();
    let email = templates
        .render(
            "de",
            &EmailValues {
                expires_at: "3. Dezember 2026",
                message: "Willkommen im Team!",
                ..values()
            },
        )
        .unwrap();
    assert_eq!(
        email.subject,
        "Ann Lee hat Sie eingeladen, Acme auf Orbit beizutreten"
    );
    assert_eq!(
        email.text,
        "Ann Lee hat Sie eingeladen, Acme auf Orbit beizutreten.\n\n\
         Ann Lee schreibt:\nWillkommen im Team!\n\n\
         Einladung annehmen:\nhttps://app.test/invitations/accept/abc\n\n\
         Diese Einladung läuft am 3. Dezember 2026 ab.\n\n\
         Sie erhalten diese E-Mail, weil bob@x.io zu Acme eingeladen wurde. \
         Wenn Sie diese Einladung nicht erwartet haben, können Sie die E-Mail einfach ignorieren: \
         Ohne Ihre Zustimmung passiert nichts.\n"
    );
    assert!(email.html.contains("<html lang=\"de\">"));
    assert!(email.html.contains(">Einladung annehmen</a>"));
    assert!(email
        .html
        .contains("Diese Einladung läuft am <strong>3. Dezember 2026</strong> ab."));
}

#[test]
fn without_an_inviter_or_product_the_account_speaks() {
    let templates = Templates::load(None).unwrap();
    let plain = EmailValues {
        invited_by: "",
        product_name: "",
        message: "See you soon",
        ..values()
    };
    let en = templates.render("en", &plain).unwrap();
    assert_eq!(en.subject, "You're invited to join Acme");
    assert!(en
        .text
        .starts_with("You're invited to join Acme.\n\nAcme wrote:\nSee you soon\n"));
    let de = templates.render("de", &plain).unwrap();
    assert_eq!(de.subject, "Sie wurden eingeladen, Acme beizutreten");
    assert!(de.text.contains("Acme schreibt:\nSee you soon\n"));
}

#[test]
fn the_inviter_and_account_name_are_escaped_in_html_only() {
    let templates = Templates::load(None).unwrap();
    let email = templates
        .render(
            "en",
            &EmailValues {
                account_name: "Smith & <Sons>",
                invited_by: "<script>alert(1)</script> \"Ann\"",
                message: "See you <soon>",
                ..values()
            },
        )
        .unwrap();
    assert_eq!(
        email.subject,
        "<script>alert(1)</script> \"Ann\" invited you to join Smith & <Sons> on Orbit"
    );
    assert!(!email.html.contains("<script>"));
    assert!(email
        .html
        .contains("&lt;script&gt;alert(1)&lt;/script&gt; &quot;Ann&quot; invited you to join Smith &amp; &lt;Sons&gt;"));
    assert!(email.html.contains("See you &lt;soon&gt;"));
}

#[test]
fn a_tag_falls_back_along_its_chain_to_english() {
    let templates = Templates::load(None).unwrap();
    assert_eq!(templates.locales(), ["de", "en"]);
    assert_eq!(templates.locale_for(Some("de-AT")), "de");
    assert_eq!(templates.locale_for(Some("DE")), "de");
    assert_eq!(templates.locale_for(Some("fr-CA")), "en");
    assert_eq!(templates.locale_for(None), "en");
}

/// Every folder under `src/dispatch/templates/` is a shipped locale with
/// all three files, built into the binary, using the same variables as
/// every other locale (so no language silently drops the expiry or the
/// inviter, and none relies on a value the others never give).
#[test]
fn every_shipped_locale_has_every_template_and_the_same_variables() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/dispatch/templates");
    let mut folders: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    folders.sort();
    let mut shipped: Vec<&str> = SHIPPED.iter().map(|(l, _)| *l).collect();
    shipped.sort();
    assert_eq!(
        folders, shipped,
        "every template folder is built in (SHIPPED)"
    );
    for locale in &folders {
        for name in FILES {
            let path = root.join(locale).join(name);
            assert!(path.is_file(), "{} is missing", path.display());
            let (_, files) = SHIPPED.iter().find(|(l, _)| l == locale).unwrap();
            let index = FILES.iter().position(|f| *f == name).unwrap();
            assert_eq!(files[index], std::fs::read_to_string(&path).unwrap());
        }
    }
    let templates = Templates::load(None).unwrap();
    let english = templates.variables(DEFAULT_LOCALE).unwrap();
    let known: BTreeSet<&str> = VARIABLES.into_iter().collect();
    for locale in templates.locales() {
        let vars = templates.variables(locale).unwrap();
        assert_eq!(vars, english, "{locale} uses other variables than en");
        for used in vars.values().flatten() {
            assert!(known.contains(used.as_str()), "{locale} uses {used}");
        }
    }
    let all: BTreeSet<&String> = english.values().flatten().collect();
    assert_eq!(
        all.len(),
        VARIABLES.len(),
        "the English set uses every variable"
    );
}

#[test]
fn a_template_dir_overrides_english_flat_and_adds_languages_by_folder() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("subject.txt"),
        "Join {{ account_name }} now",
    )
    .unwrap();
    let fr = dir.path().join("fr");
    std::fs::create_dir(&fr).unwrap();
    std::fs::write(fr.join("subject.txt"), "{{ account_name }} vous invite").unwrap();
    std::fs::write(
        fr.join("body.txt"),
        "Accepter : {{ accept_url }} ({{ expires_at }})",
    )
    .unwrap();
    std::fs::write(
        fr.join("body.html"),
        "<a href=\"{{ accept_url }}\">Accepter</a>",
    )
    .unwrap();
    let de = dir.path().join("de");
    std::fs::create_dir(&de).unwrap();
    std::fs::write(de.join("subject.txt"), "Willkommen bei {{ account_name }}").unwrap();
    let templates = Templates::load(Some(dir.path())).unwrap();
    assert_eq!(templates.locales(), ["de", "en", "fr"]);
    assert_eq!(templates.locale_for(Some("fr-CA")), "fr");
    let en = templates.render("en", &values()).unwrap();
    assert_eq!(en.subject, "Join Acme now");
    assert!(
        en.text.starts_with("Ann Lee invited you"),
        "the built-in body stays"
    );
    let fr = templates.render("fr", &values()).unwrap();
    assert_eq!(fr.subject, "Acme vous invite");
    let de = templates.render("de", &values()).unwrap();
    assert_eq!(de.subject, "Willkommen bei Acme");
    assert!(
        de.text.contains("Einladung annehmen:"),
        "the rest of de is built in"
    );
}

#[test]
fn a_new_language_missing_a_file_or_a_broken_template_is_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let it = dir.path().join("it");
    std::fs::create_dir(&it).unwrap();
    std::fs::write(it.join("subject.txt"), "Invito").unwrap();
    let error = Templates::load(Some(dir.path())).err().unwrap();
    assert!(error.to_string().contains("lacks body.txt"), "{error}");

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("body.txt"), "{{ accept_url ").unwrap();
    assert!(Templates::load(Some(dir.path())).is_err());

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("body.txt"), "{{ acept_url }}").unwrap();
    assert!(
        Templates::load(Some(dir.path())).is_err(),
        "a misspelt variable fails at start"
    );
}

#[test]
fn substituting_the_shared_content_gives_the_rendered_email_in_every_shape() {
    let templates = Templates::load(None).unwrap();
    for locale in templates.locales() {
        for (invited_by, product_name, message) in [
            ("", "", ""),
            ("Ann & Co", "", "Hi <there>"),
            ("", "Orbit", "x"),
            ("Ann", "Orbit", ""),
        ] {
            let values = EmailValues {
                account_name: "Smith & <Sons>",
                invited_by,
                product_name,
                message,
                ..values()
            };
            let rendered = templates.render(locale, &values).unwrap();
            let mut shared = (*rendered.shared).clone();
            for (key, value) in substitutions(&values) {
                let placeholder = format!("-{key}-");
                shared.text = shared.text.replace(&placeholder, &value);
                shared.html = shared.html.replace(&placeholder, &value);
                shared.subject = shared.subject.replace(&placeholder, &value);
            }
            assert_eq!(shared.subject, rendered.subject, "{locale}");
            assert_eq!(shared.text, rendered.text, "{locale}");
            assert_eq!(shared.html, rendered.html, "{locale}");
        }
    }
}
