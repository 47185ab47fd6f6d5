ALTER TABLE invitations DROP COLUMN rendered_reply_to;
ALTER TABLE invitations DROP COLUMN rendered_account_name;
ALTER TABLE imports DROP COLUMN locale;
ALTER TABLE imports DROP COLUMN invited_by;
ALTER TABLE accounts DROP COLUMN reply_to;
