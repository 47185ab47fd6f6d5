-- An account's sent invitations by expiry, so the writers that open
-- invitations (imports, re-sends) find the account's expired ones through
-- an index before they look at what is open, instead of walking every
-- invitation the account ever had.
CREATE INDEX invitations_account_expiry ON invitations (account_id, expires_at)
WHERE status IN ('sent', 'delivered');
