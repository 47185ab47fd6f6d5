-- The two partial indexes of invitations by (account, address) said
-- `status IN ('queued', 'sent', 'delivered')` and `NOT IN` the same list.
-- SQLite evaluates an IN list of three or more constants in an index's
-- condition through a temporary table it fills anew for every row written
-- (OpenEphemeral, three inserts, a probe), twice per invitation an import
-- adds or a status change moves: in a profile of a 1M import that was the
-- writer's single largest avoidable cost. The same conditions written as
-- comparisons are plain register tests. The queries that use these indexes
-- say the same words (`address_rule::open_condition`).
DROP INDEX invitations_open_address;
CREATE UNIQUE INDEX invitations_open_address ON invitations (account_id, email_key)
WHERE (status = 'queued' OR status = 'sent' OR status = 'delivered');
DROP INDEX invitations_closed_address;
CREATE INDEX invitations_closed_address ON invitations (account_id, email_key)
WHERE status <> 'queued' AND status <> 'sent' AND status <> 'delivered';
