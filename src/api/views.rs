//! The JSON shapes of the API: what the frontend and scripts rely on.

use crate::db::models::{EntryRef, Import, ImportCounts, User};
use crate::domain::{EntryStatus, ImportStatus, InvalidReason};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use utoipa::ToSchema;

fn utc(time: NaiveDateTime) -> DateTime<Utc> {
    time.and_utc()
}

/// An import with its counts.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportView {
    /// The import's id (a UUIDv7).
    #[schema(example = "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b")]
    pub id: String,
    /// The uploaded file's name, when the client sent one.
    #[schema(example = "team.txt")]
    pub filename: Option<String>,
    /// `dispatching` while invitations are queued, then `completed`.
    pub status: ImportStatus,
    /// The upload's size in bytes.
    #[schema(example = 23817)]
    pub size_bytes: i64,
    /// When the import was made.
    pub created_at: DateTime<Utc>,
    /// When nothing was left to send.
    pub completed_at: Option<DateTime<Utc>>,
    /// How many entries got each status.
    pub counts: Counts,
    /// When the import was erased (`DELETE /imports/{id}`, or the
    /// `REPORT_RETENTION_DAYS` sweep): its report and its invitees'
    /// addresses are gone, its counts stay. Null until then.
    pub erased_at: Option<DateTime<Utc>>,
    /// The options the import was made with.
    pub options: OptionsView,
    /// Where to find the import and its report.
    pub links: Links,
}

/// The options of an import.
#[derive(Debug, Serialize, ToSchema)]
pub struct OptionsView {
    /// The message shown in the invitation email.
    pub message: Option<String>,
    /// Days the invitations stay valid once sent (null: the server's default).
    pub expires_in_days: Option<i32>,
    /// Where people are sent after accepting.
    pub redirect_url: Option<String>,
    /// Who invited them, as the emails say.
    #[schema(example = "Ann Lee")]
    pub invited_by: Option<String>,
    /// The language tag the emails were asked in (null: English).
    #[schema(example = "de")]
    pub locale: Option<String>,
}

/// How many entries got each status. `entries` = `invalid` + `duplicate` +
/// `existing_user` + `suppressed` + `already_invited` + `invited`, and
/// `invited` = the sum of the invitation statuses (`queued` to `revoked`).
#[derive(Debug, Default, Serialize, ToSchema)]
#[schema(example = json!({"entries": 1000, "invalid": 3, "duplicate": 2, "existing_user": 5,
    "suppressed": 0, "already_invited": 1, "invited": 989, "queued": 989, "sent": 0, "failed": 0,
    "delivered": 0, "bounced": 0, "complained": 0, "accepted": 0, "expired": 0, "revoked": 0}))]
pub struct Counts {
    pub entries: i64,
    pub invalid: i64,
    pub duplicate: i64,
    pub existing_user: i64,
    pub suppressed: i64,
    pub already_invited: i64,
    pub invited: i64,
    pub queued: i64,
    pub sent: i64,
    pub failed: i64,
    pub delivered: i64,
    pub bounced: i64,
    pub complained: i64,
    pub accepted: i64,
    pub expired: i64,
    pub revoked: i64,
}

impl From<ImportCounts> for Counts {
    fn from(c: ImportCounts) -> Counts {
        Counts {
            entries: c.entries,
            invalid: c.invalid,
            duplicate: c.duplicate,
            existing_user: c.existing_user,
            suppressed: c.suppressed,
            already_invited: c.already_invited,
            invited: c.invited,
            queued: c.queued,
            sent: c.sent,
            failed: c.failed,
            delivered: c.delivered,
            bounced: c.bounced,
            complained: c.complained,
            accepted: c.accepted,
            expired: c.expired,
            revoked: c.revoked,
        }
    }
}

/// Links of an import.
#[derive(Debug, Serialize, ToSchema)]
pub struct Links {
    #[serde(rename = "self")]
    #[schema(example = "/imports/0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b")]
    pub this: String,
    #[schema(example = "/imports/0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b/report")]
    pub report: String,
}

impl From<Import> for ImportView {
    fn from(import: Import) -> ImportView {
        let this = format!("/imports/{}", import.id);
        ImportView {
            links: Links {
                report: format!("{this}/report"),
                this,
            },
            status: ImportStatus::from_stored(&import.status),
            size_bytes: import.size_bytes,
            created_at: utc(import.created_at),
            completed_at: import.completed_at.map(utc),
            erased_at: import.erased_at.map(utc),
            counts: import.counts.into(),
            options: OptionsView {
                message: import.custom_message,
                expires_in_days: import.expiry_days,
                redirect_url: import.redirect_url,
                invited_by: import.invited_by,
                locale: import.locale,
            },
            filename: import.filename,
            id: import.id,
        }
    }
}

/// The history of imports, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportHistory {
    pub imports: Vec<ImportView>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// One entry of a file, as the report shows it.
// Its strings are owned, or borrowed from the row they were read from
// (`EntryView::of`).
#[derive(Debug, Serialize, ToSchema)]
pub struct EntryView<'a> {
    /// 1-based position of the entry in the file.
    #[schema(example = 1)]
    pub position: i64,
    /// 1-based line the entry starts on.
    #[schema(example = 1)]
    pub line: i64,
    /// The entry as written.
    #[schema(example = "Ann <ann@x.io>")]
    pub raw: Cow<'a, str>,
    /// The normalised address (null when invalid).
    #[schema(example = "ann@x.io")]
    pub email: Option<Cow<'a, str>>,
    pub status: EntryStatus,
    /// Why an `invalid` entry is invalid (a stable code), else null.
    #[schema(value_type = Option<InvalidReasonCode>, example = json!(null))]
    pub reason: Option<InvalidReason>,
    /// What a person should know, in words: what to fix in an `invalid`
    /// entry, or the provider's words for a `failed` or `bounced` one.
    #[schema(example = json!(null))]
    pub detail: Option<Cow<'a, str>>,
}

/// The stable codes of why an entry is invalid.
pub struct InvalidReasonCode;

impl utoipa::PartialSchema for InvalidReasonCode {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some(
                "Why an entry is not a deliverable address (see the README's table).",
            ))
            .enum_values(Some(InvalidReason::ALL.iter().map(|r| r.code())))
            .into()
    }
}

impl ToSchema for InvalidReasonCode {}

/// An entry's `reason` code and `detail` words, from the stored reason: a
/// code for an invalid entry, the provider's words for a failed one.
pub fn reason_and_detail<'a>(
    status: &str,
    stored: Option<&'a str>,
) -> (Option<InvalidReason>, Option<Cow<'a, str>>) {
    match status {
        "invalid" => {
            let code = stored.and_then(InvalidReason::from_code);
            (code, code.map(|c| Cow::Borrowed(c.description())))
        }
        _ => (None, stored.map(Cow::Borrowed)),
    }
}

impl<'a> EntryView<'a> {
    /// The view of a stored entry, borrowing its strings.
    pub fn of(entry: EntryRef<'a>) -> EntryView<'a> {
        let (reason, detail) = reason_and_detail(entry.status, entry.reason);
        EntryView {
            position: entry.position,
            line: entry.line,
            raw: Cow::Borrowed(entry.raw),
            email: entry.email.map(Cow::Borrowed),
            status: entry.status.parse().unwrap_or(EntryStatus::Queued),
            reason,
            detail,
        }
    }
}

impl EntryView<'_> {
    /// Appends the entry as JSON to `out`: the very text serde writes for
    /// it (a test compares them), in a fraction of the time (a report page
    /// writes a hundred entries; serde escapes every field name again on
    /// each, and looks at a string byte by byte where most need no escape
    /// and are copied whole here).
    pub fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        fn int(out: &mut Vec<u8>, name: &[u8], value: i64) {
            out.extend_from_slice(name);
            out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        }
        fn string(out: &mut Vec<u8>, name: &[u8], value: Option<&str>) -> serde_json::Result<()> {
            out.extend_from_slice(name);
            match value {
                None => out.extend_from_slice(b"null"),
                Some(s) if !needs_escape(s.as_bytes()) => {
                    out.push(b'"');
                    out.extend_from_slice(s.as_bytes());
                    out.push(b'"');
                }
                Some(s) => serde_json::to_writer(&mut *out, s)?,
            }
            Ok(())
        }
        /// Whether serde escapes any byte of `s`: control characters,
        /// quotes, backslashes. Every byte is looked at, with no early exit,
        /// so the compiler checks many at a time.
        fn needs_escape(s: &[u8]) -> bool {
            s.iter().fold(false, |any, &b| {
                any | (b < 0x20) | (b == b'"') | (b == b'\\')
            })
        }
        int(out, br#"{"position":"#, self.position);
        int(out, br#","line":"#, self.line);
        string(out, br#","raw":"#, Some(&self.raw))?;
        string(out, br#","email":"#, self.email.as_deref())?;
        string(out, br#","status":"#, Some(self.status.as_str()))?;
        out.extend_from_slice(br#","reason":"#);
        serde_json::to_writer(&mut *out, &self.reason)?;
        string(out, br#","detail":"#, self.detail.as_deref())?;
        out.push(b'}');
        Ok(())
    }
}

/// One page of an import's report, in file order.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportPage {
    pub import: ImportView,
    pub entries: Vec<EntryView<'static>>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// What an import would do (`dry_run=true`): nothing was written.
#[derive(Debug, Serialize, ToSchema)]
pub struct DryRunView {
    /// Always true.
    pub dry_run: bool,
    /// The counts the import would have.
    pub counts: Counts,
    /// The entries that would not be invited, in file order: the first
    /// 1,000 of them.
    pub entries: Vec<EntryView<'static>>,
    /// True when more entries would not be invited than `entries` lists
    /// (the counts cover them all; the import's report lists every one).
    pub entries_truncated: bool,
    /// The account's daily invitation budget now.
    pub budget: BudgetView,
    /// Whether the import would fit the budget left (`counts.queued` at
    /// most `budget.remaining`); one that does not is refused with 429
    /// `invitation-budget-exceeded`.
    pub within_budget: bool,
}

/// The daily invitation budget: invitations queued (by imports and
/// re-sends) in the last 24 hours against the account's limit.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub struct BudgetView {
    /// Invitations allowed per 24 hours (null: unlimited).
    #[schema(example = 1000)]
    pub daily_limit: Option<i64>,
    /// Queued in the last 24 hours.
    #[schema(example = 120)]
    pub used: i64,
    /// Left now (null: unlimited).
    #[schema(example = 880)]
    pub remaining: Option<i64>,
}

impl From<crate::db::budget::Budget> for BudgetView {
    fn from(budget: crate::db::budget::Budget) -> BudgetView {
        BudgetView {
            daily_limit: budget.limit,
            used: budget.used,
            remaining: budget.remaining(),
        }
    }
}

/// A user (member) of the account.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    #[schema(example = "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b")]
    pub id: String,
    #[schema(example = "ann@x.io")]
    pub email: String,
    pub created_at: DateTime<Utc>,
}

impl From<User> for UserView {
    fn from(user: User) -> UserView {
        UserView {
            id: user.id,
            email: user.email,
            created_at: utc(user.created_at),
        }
    }
}

/// Addresses to add as users.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AddUsers {
    /// Up to 10,000 addresses.
    #[schema(example = json!(["ann@x.io", "bob@y.io"]))]
    pub emails: Vec<String>,
}

/// An address that was not accepted, and why.
#[derive(Debug, Serialize, ToSchema)]
pub struct RejectedEmail {
    #[schema(example = "bob@")]
    pub email: String,
    #[schema(value_type = InvalidReasonCode, example = "missing_domain")]
    pub reason: InvalidReason,
}

/// What `POST /users` did with each address.
#[derive(Debug, Serialize, ToSchema)]
pub struct AddedUsers {
    /// Users created now.
    pub added: Vec<UserView>,
    /// Addresses that were users already (normalised).
    pub existing: Vec<String>,
    /// Addresses that are not valid; nothing was stored for them.
    pub invalid: Vec<RejectedEmail>,
}

/// A page of the account's users, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsersPage {
    pub users: Vec<UserView>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// An invitation, as administrators see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationView {
    #[schema(example = "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b")]
    pub id: String,
    pub import_id: String,
    #[schema(example = "ann@x.io")]
    pub email: String,
    pub status: EntryStatus,
    /// Sending attempts made for the current token.
    pub attempts: i32,
    /// The provider's last error, if any.
    pub last_error: Option<String>,
    pub provider_message_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub accepted_at: Option<DateTime<Utc>>,
}

impl From<crate::db::invitations::Invitation> for InvitationView {
    fn from(i: crate::db::invitations::Invitation) -> InvitationView {
        InvitationView {
            status: i.status.parse().unwrap_or(EntryStatus::Queued),
            id: i.id,
            import_id: i.import_id,
            email: i.email,
            attempts: i.attempts,
            last_error: i.last_error,
            provider_message_id: i.provider_message_id,
            created_at: utc(i.created_at),
            sent_at: i.sent_at.map(utc),
            expires_at: i.expires_at.map(utc),
            accepted_at: i.accepted_at.map(utc),
        }
    }
}

/// A page of the account's invitations, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationsPage {
    pub invitations: Vec<InvitationView>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// What an invitation link is for (shown before accepting).
#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationPreview {
    /// The account the person is invited to.
    #[schema(example = "Acme")]
    pub account_name: String,
    /// The invited address.
    #[schema(example = "ann@x.io")]
    pub email: String,
    /// Until when the link works.
    pub expires_at: Option<DateTime<Utc>>,
    /// The administrator's message, if the import had one.
    pub message: Option<String>,
}

/// The result of accepting an invitation.
#[derive(Debug, Serialize, ToSchema)]
pub struct AcceptedInvitation {
    /// Always `accepted`.
    #[schema(example = "accepted")]
    pub status: &'static str,
    /// The user the address now is.
    pub user_id: String,
    #[schema(example = "Acme")]
    pub account_name: String,
    #[schema(example = "ann@x.io")]
    pub email: String,
    /// Where to send the person next, if the import named a place.
    pub redirect_url: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_written_by_hand_is_the_text_serde_writes() {
        let entry = |raw: &'static str, email, status, reason| EntryRef {
            position: 900_001,
            line: 7,
            raw,
            email,
            status,
            reason,
        };
        for entry in [
            entry("Ann <ann@x.io>", Some("ann@x.io"), "queued", None),
            entry("\"bob\"\t@\u{1}", None, "invalid", Some("missing_at")),
            entry(
                "zoë@x.io",
                Some("zoë@x.io"),
                "failed",
                Some("Mailbox \"full\"\n"),
            ),
            entry("x", None, "invalid", Some("not-a-code")),
            entry("a\\b@x.io\u{7f}", None, "invalid", Some("missing_at")),
            entry("ann@x.io", Some("ann@x.io"), "sent", Some("\u{1f}")),
        ] {
            let view = EntryView::of(entry);
            let mut ours = Vec::new();
            view.write_json(&mut ours).unwrap();
            let serde = serde_json::to_string(&view).unwrap();
            assert_eq!(String::from_utf8(ours).unwrap(), serde);
        }
    }
}
