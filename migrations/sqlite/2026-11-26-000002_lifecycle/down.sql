DROP INDEX invitations_expiry;
DROP TABLE webhook_events;
DROP TABLE suppressions;
ALTER TABLE imports DROP COLUMN redirect_url;
ALTER TABLE imports DROP COLUMN expiry_days;
ALTER TABLE imports DROP COLUMN custom_message;
