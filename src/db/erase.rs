//! Erasing an import (`DELETE /imports/{id}` and the retention sweep): its
//! report entries are deleted and its invitations keep their state and
//! times (so the counts stay true) but lose their address and anything
//! else that could name a person. Open invitations are revoked first,
//! through the revoke path, so no email goes out and no link works.

use super::lifecycle::{self, Target};
use super::revoke;
use super::schema::{import_entries, imports, invitations};
use super::{write_transaction, DbConnection};
use chrono::NaiveDateTime;
use diesel::prelude::*;

/// What an erased invitation holds as its address and address key: no
/// real address normalises to it, so no lookup ever matches one.
pub const ERASED: &str = "";

/// The states of an invitation still open (its link may be used).
const OPEN: &[&str] = &["queued", "sent", "delivered"];

/// What [`erase`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Erased {
    /// Erased now, or before (an erase is idempotent).
    Done,
    /// No such import in the account.
    NotFound,
    /// A dispatcher is handing some of its invitations to the provider, or
    /// has yet to settle whether an earlier try reached it: their emails
    /// may be out, so nothing was changed; try again shortly.
    Busy,
}

/// Erases import `import_id` of `account_id`, in one transaction.
#[tracing::instrument(skip(conn))]
pub fn erase(
    conn: &mut DbConnection,
    account_id: &str,
    import_id: &str,
    now: NaiveDateTime,
) -> QueryResult<Erased> {
    write_transaction(conn, |conn| {
        let erased_at: Option<Option<NaiveDateTime>> = imports::table
            .filter(imports::account_id.eq(account_id))
            .filter(imports::id.eq(import_id))
            .select(imports::erased_at)
            .first(conn)
            .optional()?;
        match erased_at {
            None => return Ok(Erased::NotFound),
            Some(Some(_)) => return Ok(Erased::Done),
            Some(None) => {}
        }
        let target = Target::Import {
            account_id,
            import_id,
        };
        // Locks the queued rows on PostgreSQL, so no dispatcher claims one
        // between this look and the revoke.
        let busy = lifecycle::select(conn, target, &["queued"])?
            .iter()
            .any(|m| m.in_flight(now) || m.unconfirmed(now));
        if busy {
            return Ok(Erased::Busy);
        }
        revoke::revoke(conn, target, OPEN, now)?;
        diesel::delete(import_entries::table.filter(import_entries::import_id.eq(import_id)))
            .execute(conn)?;
        diesel::update(invitations::table.filter(invitations::import_id.eq(import_id)))
            .set((
                invitations::email.eq(ERASED),
                invitations::email_key.eq(ERASED),
                // A provider's error often quotes the address.
                invitations::last_error.eq(None::<String>),
            ))
            .execute(conn)?;
        diesel::update(imports::table.find(import_id))
            .set(imports::erased_at.eq(Some(now)))
            .execute(conn)?;
        Ok(Erased::Done)
    })
}

/// The account and id of the imports made before `before` and not yet
/// erased, oldest first, at most `limit`.
pub fn older_than(
    conn: &mut DbConnection,
    before: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<(String, String)>> {
    imports::table
        .filter(imports::erased_at.is_null())
        .filter(imports::created_at.lt(before))
        .order((imports::created_at.asc(), imports::id.asc()))
        .select((imports::account_id, imports::id))
        .limit(limit)
        .load(conn)
}
