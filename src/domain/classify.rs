//! The classifier: turns a decoded file into entries with a status each.
//! The real import and the dry run both use it, so a preview can never
//! disagree with the run.
//!
//! It works in two steps, so that what the account holds is never loaded
//! whole: the file alone decides what is invalid and what repeats an
//! earlier entry; the first occurrence of each address is provisionally
//! queued, and the caller then asks the account about those addresses only
//! (a batch at a time) and [`settle`]s them with its answer, a [`Known`].

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

/// What the account already has, by address key: for the keys it was
/// asked about, not necessarily all it holds.
#[derive(Debug, Default, Clone)]
pub struct Known {
    /// Addresses of the account's users.
    pub users: KeySet,
    /// Addresses on the account's suppression list.
    pub suppressed: KeySet,
    /// Addresses with a pending, unexpired invitation.
    pub pending: KeySet,
}

impl Known {
    /// Why the account keeps `key` from being invited, if it does (a user
    /// first, then a suppression, then an open invitation).
    pub fn status_of(&self, key: &str) -> Option<EntryStatus> {
        let key = key_hash(key);
        if self.users.contains(&key) {
            Some(EntryStatus::ExistingUser)
        } else if self.suppressed.contains(&key) {
            Some(EntryStatus::Suppressed)
        } else if self.pending.contains(&key) {
            Some(EntryStatus::AlreadyInvited)
        } else {
            None
        }
    }
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
    /// entries that get an invitation (and, until [`settle`]d, for every
    /// first occurrence of an address).
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
    /// Counts one more entry, of the (settled) `status`.
    pub fn add(&mut self, status: EntryStatus) {
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

/// Settles a provisionally queued entry with the account's answer about
/// its address: it stays queued unless `known` says why not; only a queued
/// entry keeps its key.
pub fn settle(entry: &mut Classified<'_>, known: &Known) {
    if entry.status != EntryStatus::Queued {
        return;
    }
    if let Some(status) = entry.key.as_deref().and_then(|key| known.status_of(key)) {
        entry.status = status;
        entry.key = None;
    }
}

/// An iterator of [`Classified`] entries, decided by the file alone
/// (invalid, duplicate, or a first occurrence, provisionally queued until
/// [`settle`]d).
pub struct Classifier<'a> {
    entries: Entries<'a>,
    seen: KeySet,
    position: u64,
}

/// Classifies the entries of `text` by the file alone; [`settle`] the
/// queued ones against what the account has.
pub fn classify(text: &str) -> Classifier<'_> {
    Classifier {
        entries: parser::entries(text),
        seen: KeySet::default(),
        position: 0,
    }
}

impl Classifier<'_> {
    fn decide(&mut self, key: &str) -> EntryStatus {
        match self.seen.insert(key_hash(key)) {
            true => EntryStatus::Queued,
            false => EntryStatus::Duplicate,
        }
    }
}

impl<'a> Iterator for Classifier<'a> {
    type Item = Classified<'a>;

    fn next(&mut self) -> Option<Classified<'a>> {
        let entry = self.entries.next()?;
        self.position += 1;
        let (email, key, status, reason) = match entry.validate() {
            Ok(email) => {
                let key = email.key();
                let status = self.decide(&key);
                // Only a first occurrence needs the key again: to ask the
                // account about it, and for its invitation.
                let key = (status == EntryStatus::Queued).then_some(key);
                (Some(email), key, status, None)
            }
            Err(reason) => (None, None, EntryStatus::Invalid, Some(reason.code())),
        };
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

    /// Classifies `text` and settles it against `known`, as a caller would.
    fn settled<'a>(text: &'a str, known: &Known) -> (Vec<Classified<'a>>, Tally) {
        let mut entries: Vec<Classified<'a>> = classify(text).collect();
        let mut tally = Tally::default();
        for entry in &mut entries {
            settle(entry, known);
            tally.add(entry.status);
        }
        (entries, tally)
    }

    fn statuses(text: &str, known: &Known) -> Vec<EntryStatus> {
        settled(text, known).0.iter().map(|c| c.status).collect()
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
        assert_eq!(got, want);
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
        assert_eq!(got, want);
    }

    #[test]
    fn a_user_is_reported_as_a_user_even_when_also_suppressed_and_invited() {
        let mut known = Known::default();
        for set in [&mut known.users, &mut known.suppressed, &mut known.pending] {
            set.insert(key_hash("all@x.io"));
        }
        known.suppressed.insert(key_hash("both@x.io"));
        known.pending.insert(key_hash("both@x.io"));
        let got = statuses("all@x.io both@x.io", &known);
        assert_eq!(got, [EntryStatus::ExistingUser, EntryStatus::Suppressed]);
    }

    #[test]
    fn only_first_occurrences_carry_a_key_to_ask_the_account_about() {
        let keys: Vec<Option<String>> = classify("Ann@X.io ann@x.io bad B@y.io")
            .map(|c| c.key)
            .collect();
        let want = [Some("ann@x.io"), None, None, Some("b@y.io")];
        assert_eq!(keys, want.map(|k| k.map(str::to_owned)));
    }

    #[test]
    fn only_an_invited_entry_keeps_its_key_once_settled() {
        let mut known = Known::default();
        known.users.insert(key_hash("user@x.io"));
        let (entries, _) = settled("Ann@X.io ann@x.io bad user@x.io", &known);
        let keys: Vec<Option<String>> = entries.into_iter().map(|c| c.key).collect();
        assert_eq!(keys, [Some("ann@x.io".to_owned()), None, None, None]);
    }

    #[test]
    fn settling_twice_or_settling_a_duplicate_changes_nothing() {
        let mut known = Known::default();
        known.users.insert(key_hash("a@x.io"));
        let (mut entries, _) = settled("a@x.io a@x.io", &known);
        for entry in &mut entries {
            settle(entry, &known);
        }
        assert_eq!(
            entries.iter().map(|c| c.status).collect::<Vec<_>>(),
            [EntryStatus::ExistingUser, EntryStatus::Duplicate]
        );
    }

    #[test]
    fn the_tally_adds_up_to_the_entries() {
        let mut known = Known::default();
        known.users.insert(key_hash("user@x.io"));
        let (entries, tally) = settled("a@x.io, a@x.io, user@x.io, bad, b@y.io", &known);
        let positions: Vec<u64> = entries.iter().map(|c| c.position).collect();
        assert_eq!(positions, [1, 2, 3, 4, 5]);
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
