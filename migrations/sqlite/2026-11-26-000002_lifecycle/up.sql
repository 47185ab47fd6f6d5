-- The invitation's life after sending: per-import options, the
-- suppression list, and the delivery events already applied.
ALTER TABLE imports ADD COLUMN custom_message TEXT;
ALTER TABLE imports ADD COLUMN expiry_days INTEGER;
ALTER TABLE imports ADD COLUMN redirect_url TEXT;

CREATE TABLE suppressions (
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    email_key TEXT NOT NULL,
    email TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (account_id, email_key)
);

CREATE TABLE webhook_events (
    provider TEXT NOT NULL,
    event_id TEXT NOT NULL,
    received_at TIMESTAMP NOT NULL,
    PRIMARY KEY (provider, event_id)
);

CREATE INDEX invitations_expiry ON invitations (expires_at) WHERE status IN ('sent', 'delivered');
