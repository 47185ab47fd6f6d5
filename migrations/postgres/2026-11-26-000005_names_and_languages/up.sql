-- What the invitee reads: the address replies to an account's emails go
-- to, who invited them (a person's name) and the language of the email.
ALTER TABLE accounts ADD COLUMN reply_to TEXT;
ALTER TABLE imports ADD COLUMN invited_by TEXT;
ALTER TABLE imports ADD COLUMN locale TEXT;
