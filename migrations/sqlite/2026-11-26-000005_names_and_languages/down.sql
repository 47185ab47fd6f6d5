ALTER TABLE imports DROP COLUMN locale;
ALTER TABLE imports DROP COLUMN invited_by;
ALTER TABLE accounts DROP COLUMN reply_to;
