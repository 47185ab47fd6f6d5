ALTER TABLE invitations DROP COLUMN maybe_sent;
ALTER TABLE invitations DROP COLUMN rendered_expires_at;
ALTER TABLE invitations DROP COLUMN rendered_at;
