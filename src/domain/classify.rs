//! The classifier: turns a decoded file into entries with a status each.
//! The real import and the dry run both use it, so a preview can never
//! disagree with the run.

use super::parser::{self, Entries};
use super::{EmailAddress, EntryStatus};

/// A set of address keys, each kept as its 128-bit hash: a million
/// addresses take 16 MB instead of a hundred, and two different addresses
/// share a hash with a chance far below that of a memory fault.
pub type KeySet = ahash::AHashSet<u128>;

/// The hash an address key (see [`EmailAddress::key`]) is kept as in a [`KeySet`].
pub fn key_hash(key: &str) -> u128 {
    xxhash_rust::xxh3::xxh3_128(key.as_bytes())
}

/// What the account already has, by address key.
#[derive(Debug, Default, Clone)]
pub struct Known {
    /// Addresses of the account's users.
    pub users: KeySet,
    /// Addresses on the account's suppression list.
    pub suppressed: KeySet,
    /// Addresses with a pending, unexpired invitation.
    pub pending: KeySet,
}

/// One classified entry of the file.
#[derive(Debug, Clone)]
pub struct Classified<'a> {
    /// 1-based position of the entry in the file.
    pub position: u64,
    /// 1-based line on which the entry starts.
    pub line: u64,
    /// The entry as written.
    pub raw: &'a str,
    /// The normalised address, when it is valid.
    pub email: Option<EmailAddress>,
    /// The address's comparison key ([`EmailAddress::key`]), kept for
    /// entries that get an invitation.
    pub key: Option<String>,
    /// The decided status.
    pub status: EntryStatus,
    /// Why an entry is invalid (a stable code).
    pub reason: Option<&'static str>,
}

/// How many entries got each status; these always add up to `entries`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub entries: u64,
    pub invalid: u64,
    pub duplicate: u64,
    pub existing_user: u64,
    pub suppressed: u64,
    pub already_invited: u64,
    /// Entries that got an invitation (all queued at import time).
    pub queued: u64,
}

impl Tally {
    fn add(&mut self, status: EntryStatus) {
        self.entries += 1;
        let counter = match status {
            EntryStatus::Invalid => &mut self.invalid,
            EntryStatus::Duplicate => &mut self.duplicate,
            EntryStatus::ExistingUser => &mut self.existing_user,
            EntryStatus::Suppressed => &mut self.suppressed,
            EntryStatus::AlreadyInvited => &mut self.already_invited,
            _ => &mut self.queued,
        };
        *counter += 1;
    }
}

/// An iterator of [`Classified`] entries that keeps the [`Tally`].
pub struct Classifier<'a, 'k> {
    entries: Entries<'a>,
    known: &'k Known,
    seen: KeySet,
    position: u64,
    tally: Tally,
}

/// Classifies the entries of `text` against what the account already has.
pub fn classify<'a, 'k>(text: &'a str, known: &'k Known) -> Classifier<'a, 'k> {
    Classifier {
        entries: parser::entries(text),
        known,
        seen: KeySet::default(),
        position: 0,
        tally: Tally::default(),
    }
}

impl Classifier<'_, '_> {
    /// The counts of the entries classified so far.
    pub fn tally(&self) -> Tally {
        self.tally
    }

    fn decide(&mut self, key: &str) -> EntryStatus {
        let key = key_hash(key);
        if !self.seen.insert(key) {
            EntryStatus::Duplicate
        } else if self.known.users.contains(&key) {
            EntryStatus::ExistingUser
        } else if self.known.suppressed.contains(&key) {
            EntryStatus::Suppressed
        } else if self.known.pending.contains(&key) {
            EntryStatus::AlreadyInvited
        } else {
            EntryStatus::Queued
        }
    }
}

impl<'a> Iterator for Classifier<'a, '_> {
    type Item = Classified<'a>;

    fn next(&mut self) -> Option<Classified<'a>> {
        let entry = self.entries.next()?;
        self.position += 1;
        let (email, key, status, reason) = match entry.validate() {
            Ok(email) => {
                let key = email.key();
                let status = self.decide(&key);
                // Only an invitation needs the key again; others drop it here.
                let key = (status == EntryStatus::Queued).then_some(key);
                (Some(email), key, status, None)
            }
            Err(reason) => (None, None, EntryStatus::Invalid, Some(reason.code())),
        };
        self.tally.add(status);
        Some(Classified {
            position: self.position,
            line: entry.line,
            raw: entry.raw,
            email,
            key,
            status,
            reason,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statuses(text: &str, known: &Known) -> Vec<(String, EntryStatus)> {
        classify(text, known)
            .map(|c| (c.raw.to_owned(), c.status))
            .collect()
    }

    #[test]
    fn the_first_occurrence_wins_and_later_ones_are_duplicates_whatever_their_case() {
        let known = Known::default();
        let got = statuses("Ann@X.io\nann@x.IO\nANN@x.io", &known);
        let want = [
            EntryStatus::Queued,
            EntryStatus::Duplicate,
            EntryStatus::Duplicate,
        ];
        assert_eq!(got.iter().map(|(_, s)| *s).collect::<Vec<_>>(), want);
    }

    #[test]
    fn known_users_suppressed_and_pending_addresses_are_not_invited() {
        let mut known = Known::default();
        known.users.insert(key_hash("user@x.io"));
        known.suppressed.insert(key_hash("gone@x.io"));
        known.pending.insert(key_hash("asked@x.io"));
        let got = statuses("User@x.io gone@X.io asked@x.io new@x.io nope", &known);
        let want = [
            EntryStatus::ExistingUser,
            EntryStatus::Suppressed,
            EntryStatus::AlreadyInvited,
            EntryStatus::Queued,
            EntryStatus::Invalid,
        ];
        assert_eq!(got.iter().map(|(_, s)| *s).collect::<Vec<_>>(), want);
    }

    #[test]
    fn only_an_invited_entry_carries_its_lower_cased_key() {
        let known = Known::default();
        let keys: Vec<Option<String>> = classify("Ann@X.io ann@x.io bad", &known)
            .map(|c| c.key)
            .collect();
        assert_eq!(keys, [Some("ann@x.io".to_owned()), None, None]);
    }

    #[test]
    fn the_tally_adds_up_to_the_entries() {
        let mut known = Known::default();
        known.users.insert(key_hash("user@x.io"));
        let mut classifier = classify("a@x.io, a@x.io, user@x.io, bad, b@y.io", &known);
        let positions: Vec<u64> = classifier.by_ref().map(|c| c.position).collect();
        assert_eq!(positions, [1, 2, 3, 4, 5]);
        let tally = classifier.tally();
        let want = Tally {
            entries: 5,
            invalid: 1,
            duplicate: 1,
            existing_user: 1,
            queued: 2,
            ..Tally::default()
        };
        assert_eq!(tally, want);
    }
}
