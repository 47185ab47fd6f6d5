-- Bulk Invite schema (SQLite). Ids are UUIDv7 strings; times are UTC.
CREATE TABLE accounts (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    key_hash TEXT NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE users (
    id TEXT PRIMARY KEY NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    email_key TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (account_id, email_key)
);

CREATE TABLE imports (
    id TEXT PRIMARY KEY NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    filename TEXT,
    size_bytes BIGINT NOT NULL,
    content_sha256 TEXT NOT NULL,
    idempotency_key TEXT,
    status TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    completed_at TIMESTAMP,
    entries BIGINT NOT NULL DEFAULT 0,
    invalid BIGINT NOT NULL DEFAULT 0,
    duplicate BIGINT NOT NULL DEFAULT 0,
    existing_user BIGINT NOT NULL DEFAULT 0,
    suppressed BIGINT NOT NULL DEFAULT 0,
    already_invited BIGINT NOT NULL DEFAULT 0,
    invited BIGINT NOT NULL DEFAULT 0,
    queued BIGINT NOT NULL DEFAULT 0,
    sent BIGINT NOT NULL DEFAULT 0,
    failed BIGINT NOT NULL DEFAULT 0,
    delivered BIGINT NOT NULL DEFAULT 0,
    bounced BIGINT NOT NULL DEFAULT 0,
    complained BIGINT NOT NULL DEFAULT 0,
    accepted BIGINT NOT NULL DEFAULT 0,
    expired BIGINT NOT NULL DEFAULT 0,
    revoked BIGINT NOT NULL DEFAULT 0,
    UNIQUE (account_id, idempotency_key)
);
CREATE INDEX imports_account_history ON imports (account_id, id);

-- One row per entry of the file, in file order; its status follows its invitation.
-- The two bulk tables carry no foreign keys: an import writes them with its
-- own row in one transaction, and a per-row key check would cost as much as
-- the insert itself on a million rows.
CREATE TABLE import_entries (
    import_id TEXT NOT NULL,
    position BIGINT NOT NULL,
    line BIGINT NOT NULL,
    raw TEXT NOT NULL,
    email TEXT,
    status TEXT NOT NULL,
    reason TEXT,
    PRIMARY KEY (import_id, position)
) WITHOUT ROWID;

-- The invitations, which are also the dispatch queue (transactional outbox).
-- Keyed by their report entry, so an import's invitations are one range
-- of the table and the rows of a new import are appended in order.
CREATE TABLE invitations (
    id TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL,
    import_id TEXT NOT NULL,
    position BIGINT NOT NULL,
    email TEXT NOT NULL,
    email_key TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    batch_id TEXT,
    lease_owner TEXT,
    lease_expires_at TIMESTAMP,
    token_hash TEXT,
    token_version INTEGER NOT NULL DEFAULT 0,
    provider_message_id TEXT,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL,
    sent_at TIMESTAMP,
    expires_at TIMESTAMP,
    accepted_at TIMESTAMP,
    PRIMARY KEY (import_id, position)
) WITHOUT ROWID;
CREATE INDEX invitations_account_email ON invitations (account_id, email_key);
CREATE UNIQUE INDEX invitations_token ON invitations (token_hash) WHERE token_hash IS NOT NULL;
-- The queue: new invitations in send order, and batches already tried once
-- (a retry, or a worker that died) apart, so neither scan walks the other.
CREATE INDEX invitations_due ON invitations (next_attempt_at) WHERE status = 'queued' AND batch_id IS NULL;
CREATE INDEX invitations_batched ON invitations (batch_id, next_attempt_at) WHERE status = 'queued' AND batch_id IS NOT NULL;
