-- At most one open invitation (queued, sent or delivered) per address and
-- account, enforced by the database and not only by the code that imports
-- and re-sends.
--
-- Duplicates made before this rule are settled first: of the open
-- invitations of one address, the one already emailed (else the newest)
-- stays open and the others are revoked, with their report entries and
-- their imports' counts.
UPDATE invitations
SET status = 'revoked', lease_owner = NULL, lease_expires_at = NULL,
    last_error = 'revoked: another open invitation to this address'
WHERE status IN ('queued', 'sent', 'delivered')
  AND EXISTS (
    SELECT 1 FROM invitations AS other
    WHERE other.account_id = invitations.account_id
      AND other.email_key = invitations.email_key
      AND other.status IN ('queued', 'sent', 'delivered')
      AND other.id <> invitations.id
      AND ((CASE other.status WHEN 'queued' THEN 0 ELSE 1 END)
             > (CASE invitations.status WHEN 'queued' THEN 0 ELSE 1 END)
        OR ((CASE other.status WHEN 'queued' THEN 0 ELSE 1 END)
             = (CASE invitations.status WHEN 'queued' THEN 0 ELSE 1 END)
            AND other.id > invitations.id)));

UPDATE import_entries
SET status = 'revoked', reason = 'another open invitation to this address'
WHERE EXISTS (
  SELECT 1 FROM invitations AS i
  WHERE i.import_id = import_entries.import_id AND i.position = import_entries.position
    AND i.status = 'revoked'
    AND i.last_error = 'revoked: another open invitation to this address');

-- The counts always equal the invitations' statuses, so the affected
-- imports' counts are recounted from them.
UPDATE imports
SET queued = (SELECT COUNT(*) FROM invitations AS i WHERE i.import_id = imports.id AND i.status = 'queued'),
    sent = (SELECT COUNT(*) FROM invitations AS i WHERE i.import_id = imports.id AND i.status = 'sent'),
    delivered = (SELECT COUNT(*) FROM invitations AS i WHERE i.import_id = imports.id AND i.status = 'delivered'),
    revoked = (SELECT COUNT(*) FROM invitations AS i WHERE i.import_id = imports.id AND i.status = 'revoked')
WHERE id IN (SELECT import_id FROM invitations
             WHERE last_error = 'revoked: another open invitation to this address');

UPDATE imports SET status = 'completed', completed_at = (now() AT TIME ZONE 'UTC')
WHERE queued = 0 AND status <> 'completed';

CREATE UNIQUE INDEX invitations_open_address ON invitations (account_id, email_key)
WHERE status IN ('queued', 'sent', 'delivered');
