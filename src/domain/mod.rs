//! Pure domain logic for Bulk Invite: turning an uploaded invite file into
//! entries ([`parser`]) and turning each entry into a validated, normalised
//! email address ([`email`]).
//!
//! Nothing here does I/O; everything works on borrowed text and is fast
//! enough for files of a million entries.
//!
//! Typical use:
//!
//! ```text
//! let text = domain::decode(&bytes)?;
//! for entry in domain::entries(&text) {
//!     match entry.validate() {
//!         Ok(address) => { /* dedupe on address.key(), store address.as_str() */ }
//!         Err(reason) => { /* report entry.line, entry.raw, reason.code() */ }
//!     }
//! }
//! ```

pub mod classify;
pub mod email;
pub mod name;
pub mod options;
pub mod parser;
pub mod scope;
pub mod status;

pub use email::{EmailAddress, InvalidReason};
pub use name::{DisplayName, NameError};
pub use parser::{decode, entries, DecodeError, Entry};
pub use scope::{Scope, Scopes};
pub use status::{EntryStatus, ImportStatus};
