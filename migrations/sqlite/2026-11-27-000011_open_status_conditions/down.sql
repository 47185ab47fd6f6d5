DROP INDEX invitations_open_address;
CREATE UNIQUE INDEX invitations_open_address ON invitations (account_id, email_key)
WHERE status IN ('queued', 'sent', 'delivered');
DROP INDEX invitations_closed_address;
CREATE INDEX invitations_closed_address ON invitations (account_id, email_key)
WHERE status NOT IN ('queued', 'sent', 'delivered');
