//! The statuses of report entries and of imports, with their stable names.

use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// The status of one entry of an imported file. The first five are decided
/// when the file is imported; the rest follow the entry's invitation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EntryStatus {
    /// Not a deliverable address; `reason` says why.
    Invalid,
    /// The same address (compared case-insensitively) appeared earlier in the file.
    Duplicate,
    /// The address already belongs to a user of the account.
    ExistingUser,
    /// The address bounced or complained before.
    Suppressed,
    /// A pending, unexpired invitation already exists for the address.
    AlreadyInvited,
    /// An invitation is waiting to be sent.
    Queued,
    /// The provider accepted the invitation email.
    Sent,
    /// Sending failed for good; `reason` says why.
    Failed,
    /// The provider reported the email delivered.
    Delivered,
    /// The email bounced.
    Bounced,
    /// The recipient marked the email as spam.
    Complained,
    /// The person accepted the invitation.
    Accepted,
    /// The invitation expired unanswered.
    Expired,
    /// An administrator revoked the invitation.
    Revoked,
}

impl EntryStatus {
    /// Every status, in the order reports and documentation list them.
    pub const ALL: [EntryStatus; 14] = [
        EntryStatus::Invalid,
        EntryStatus::Duplicate,
        EntryStatus::ExistingUser,
        EntryStatus::Suppressed,
        EntryStatus::AlreadyInvited,
        EntryStatus::Queued,
        EntryStatus::Sent,
        EntryStatus::Failed,
        EntryStatus::Delivered,
        EntryStatus::Bounced,
        EntryStatus::Complained,
        EntryStatus::Accepted,
        EntryStatus::Expired,
        EntryStatus::Revoked,
    ];

    /// The stable snake_case name, as stored and as the API shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryStatus::Invalid => "invalid",
            EntryStatus::Duplicate => "duplicate",
            EntryStatus::ExistingUser => "existing_user",
            EntryStatus::Suppressed => "suppressed",
            EntryStatus::AlreadyInvited => "already_invited",
            EntryStatus::Queued => "queued",
            EntryStatus::Sent => "sent",
            EntryStatus::Failed => "failed",
            EntryStatus::Delivered => "delivered",
            EntryStatus::Bounced => "bounced",
            EntryStatus::Complained => "complained",
            EntryStatus::Accepted => "accepted",
            EntryStatus::Expired => "expired",
            EntryStatus::Revoked => "revoked",
        }
    }
}

impl FromStr for EntryStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EntryStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

impl std::fmt::Display for EntryStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status name that is not one of [`EntryStatus::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown status {0:?}")]
pub struct UnknownStatus(pub String);

/// The status of an import as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImportStatus {
    /// Some invitations are still queued.
    Dispatching,
    /// Nothing is left to send; the counts tell how many failed.
    Completed,
}

impl ImportStatus {
    /// The stable name, as stored and as the API shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            ImportStatus::Dispatching => "dispatching",
            ImportStatus::Completed => "completed",
        }
    }

    /// Reads a stored name; anything unknown is treated as still dispatching.
    pub fn from_stored(s: &str) -> ImportStatus {
        if s == "completed" {
            ImportStatus::Completed
        } else {
            ImportStatus::Dispatching
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_name_reads_back_as_the_same_status() {
        for status in EntryStatus::ALL {
            assert_eq!(status.as_str().parse::<EntryStatus>(), Ok(status));
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
        }
    }

    #[test]
    fn an_unknown_status_name_is_refused() {
        assert!("Queued".parse::<EntryStatus>().is_err());
        assert!("".parse::<EntryStatus>().is_err());
    }
}
