-- What an invitation's email says is fixed when its batch is first
-- claimed, so every retry (by any worker) sends the same bytes under the
-- same idempotency key; and whether a try may have reached the provider,
-- so such an invitation is never failed with its link dead.
ALTER TABLE invitations ADD COLUMN rendered_at TIMESTAMP;
ALTER TABLE invitations ADD COLUMN rendered_expires_at TIMESTAMP;
ALTER TABLE invitations ADD COLUMN maybe_sent BOOLEAN NOT NULL DEFAULT FALSE;
