-- What the invitee reads: the address replies to an account's emails go
-- to, who invited them (a person's name) and the language of the email.
ALTER TABLE accounts ADD COLUMN reply_to TEXT;
ALTER TABLE imports ADD COLUMN invited_by TEXT;
ALTER TABLE imports ADD COLUMN locale TEXT;
-- The account's name and reply-to an invitation's email states, fixed when
-- its batch is first claimed like its time and expiry, so a retry renders
-- the same bytes (an idempotent retry must be the same request).
ALTER TABLE invitations ADD COLUMN rendered_account_name TEXT;
ALTER TABLE invitations ADD COLUMN rendered_reply_to TEXT;
