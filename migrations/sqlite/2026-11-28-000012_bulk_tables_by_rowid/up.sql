-- The two bulk tables become rowid tables, their (import, position) key a
-- unique index beside them. An import appends millions of rows to both.
-- A WITHOUT ROWID table is itself an index b-tree, and SQLite balances an
-- index b-tree that outgrows its last page by spreading the cells of the
-- last three pages over them again, so a page is rewritten several times
-- as it fills: under callgrind that balancing was 19 % of the instructions
-- of a 100,000-entry import's writing thread. A rowid table takes a row
-- past its last page onto a new page (its "quick balance"), and its
-- indexes hold the 8-byte rowid instead of the 36-byte import id and the
-- position, so the index b-trees that still balance the slow way are
-- smaller (balancing: 13 %).
--
-- The invitations' times are declared TEXT, as diesel stores them. Declared
-- TIMESTAMP they had NUMERIC affinity: SQLite tried to read every time
-- written as a number before storing the text, two of them per invitation
-- an import adds (2.5 % of the writing thread). No value or comparison
-- changes: a text that is no number was stored and compared as text.

CREATE TABLE import_entries_by_rowid (
    import_id TEXT NOT NULL,
    position BIGINT NOT NULL,
    line BIGINT NOT NULL,
    raw TEXT NOT NULL,
    email TEXT,
    status TEXT NOT NULL,
    reason TEXT,
    PRIMARY KEY (import_id, position)
);
INSERT INTO import_entries_by_rowid (import_id, position, line, raw, email, status, reason)
SELECT import_id, position, line, raw, email, status, reason FROM import_entries
ORDER BY import_id, position;
DROP TABLE import_entries;
ALTER TABLE import_entries_by_rowid RENAME TO import_entries;

CREATE TABLE invitations_by_rowid (
    id TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL,
    import_id TEXT NOT NULL,
    position BIGINT NOT NULL,
    email TEXT NOT NULL,
    email_key TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    batch_id TEXT,
    lease_owner TEXT,
    lease_expires_at TEXT,
    token_hash TEXT,
    token_version INTEGER NOT NULL DEFAULT 0,
    provider_message_id TEXT,
    last_error TEXT,
    created_at TEXT NOT NULL,
    sent_at TEXT,
    expires_at TEXT,
    accepted_at TEXT,
    rendered_at TEXT,
    rendered_expires_at TEXT,
    maybe_sent BOOLEAN NOT NULL DEFAULT FALSE,
    rendered_account_name TEXT,
    rendered_reply_to TEXT,
    PRIMARY KEY (import_id, position)
);
INSERT INTO invitations_by_rowid
SELECT id, account_id, import_id, position, email, email_key, status, attempts,
       next_attempt_at, batch_id, lease_owner, lease_expires_at, token_hash,
       token_version, provider_message_id, last_error, created_at, sent_at,
       expires_at, accepted_at, rendered_at, rendered_expires_at, maybe_sent,
       rendered_account_name, rendered_reply_to
FROM invitations ORDER BY import_id, position;
DROP TABLE invitations;
ALTER TABLE invitations_by_rowid RENAME TO invitations;

CREATE UNIQUE INDEX invitations_token ON invitations (token_hash) WHERE token_hash IS NOT NULL;
CREATE INDEX invitations_due ON invitations (next_attempt_at) WHERE status = 'queued' AND batch_id IS NULL;
CREATE INDEX invitations_batched ON invitations (batch_id, next_attempt_at) WHERE status = 'queued' AND batch_id IS NOT NULL;
CREATE INDEX invitations_expiry ON invitations (expires_at) WHERE status IN ('sent', 'delivered');
CREATE INDEX invitations_account_expiry ON invitations (account_id, expires_at)
WHERE status IN ('sent', 'delivered');
CREATE UNIQUE INDEX invitations_open_address ON invitations (account_id, email_key)
WHERE (status = 'queued' OR status = 'sent' OR status = 'delivered');
CREATE INDEX invitations_closed_address ON invitations (account_id, email_key)
WHERE status <> 'queued' AND status <> 'sent' AND status <> 'delivered';
