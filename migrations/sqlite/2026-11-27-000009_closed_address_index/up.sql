-- An import adds millions of open invitations; the index of every
-- invitation by (account, address) made it maintain two indexes of the
-- same key for each of them, both as large as the account's history.
-- The open ones are already in the unique index of open invitations
-- (invitations_open_address), so this one now holds the others only
-- (accepted, revoked, failed, expired): an invitation enters it when it
-- closes, once, not when it is imported. Looking an address up across
-- all of its invitations asks both indexes (`invitations::list`).
DROP INDEX invitations_account_email;
CREATE INDEX invitations_closed_address ON invitations (account_id, email_key)
WHERE status NOT IN ('queued', 'sent', 'delivered');
