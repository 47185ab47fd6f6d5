DROP INDEX invitations_closed_address;
CREATE INDEX invitations_account_email ON invitations (account_id, email_key);
