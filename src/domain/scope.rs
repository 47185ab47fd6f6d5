//! What an API key may do. Scopes nest: `admin` grants everything `write`
//! does and `write` everything `read` does, so a key is described by the
//! scopes it was given and checked by the strongest of them.

use serde::{Deserialize, Serialize};
use std::fmt;

/// One scope of an API key.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Every `GET`: imports, reports, invitations, users, suppressions, the account.
    Read,
    /// Imports, previews, re-sends, revocations, users, suppressions (and `read`).
    Write,
    /// API keys and the account's settings (and `write`).
    Admin,
}

impl Scope {
    /// Every scope, weakest first.
    pub const ALL: [Scope; 3] = [Scope::Read, Scope::Write, Scope::Admin];

    /// The scope's name, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }

    /// The scope a name spells, if any.
    pub fn parse(name: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The scopes of one key: a non-empty set, kept sorted and without repeats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scopes(Vec<Scope>);

impl Scopes {
    /// The scopes given, or `None` when there are none.
    pub fn new(scopes: impl IntoIterator<Item = Scope>) -> Option<Scopes> {
        let mut scopes: Vec<Scope> = scopes.into_iter().collect();
        scopes.sort();
        scopes.dedup();
        (!scopes.is_empty()).then_some(Scopes(scopes))
    }

    /// Every scope (a key for everything).
    pub fn admin() -> Scopes {
        Scopes(vec![Scope::Admin])
    }

    /// Reads the stored form (names separated by spaces); unknown names are
    /// ignored, and a row naming none grants nothing beyond `read`.
    pub fn from_stored(stored: &str) -> Scopes {
        Scopes::new(stored.split_whitespace().filter_map(Scope::parse))
            .unwrap_or(Scopes(vec![Scope::Read]))
    }

    /// The stored form: names separated by spaces.
    pub fn to_stored(&self) -> String {
        self.0
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Whether these scopes allow what `needed` allows.
    pub fn grants(&self, needed: Scope) -> bool {
        self.0.iter().any(|&s| s >= needed)
    }

    /// The scopes, weakest first.
    pub fn iter(&self) -> impl Iterator<Item = Scope> + '_ {
        self.0.iter().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stronger_scopes_grant_the_weaker_ones() {
        let admin = Scopes::admin();
        assert!(Scope::ALL.iter().all(|&s| admin.grants(s)));
        let write = Scopes::new([Scope::Write]).unwrap();
        assert!(write.grants(Scope::Read) && write.grants(Scope::Write));
        assert!(!write.grants(Scope::Admin));
        let read = Scopes::new([Scope::Read]).unwrap();
        assert!(read.grants(Scope::Read) && !read.grants(Scope::Write));
    }

    #[test]
    fn the_stored_form_round_trips_sorted_without_repeats() {
        let scopes = Scopes::new([Scope::Write, Scope::Read, Scope::Write]).unwrap();
        assert_eq!(scopes.to_stored(), "read write");
        assert_eq!(Scopes::from_stored("read write"), scopes);
        assert_eq!(Scopes::from_stored("admin"), Scopes::admin());
        assert_eq!(Scopes::new([]), None);
    }
}
