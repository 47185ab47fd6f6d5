-- API keys as a resource: a name, scopes (space-separated: read, write,
-- admin), the first characters of the key for recognition (null for keys
-- made before this), and when it was last used (written at most once a
-- minute per process). Keys made before this keep working as admin keys.
ALTER TABLE api_keys ADD COLUMN name TEXT NOT NULL DEFAULT 'default';
ALTER TABLE api_keys ADD COLUMN scopes TEXT NOT NULL DEFAULT 'admin';
ALTER TABLE api_keys ADD COLUMN prefix TEXT;
ALTER TABLE api_keys ADD COLUMN last_used_at TIMESTAMP;
CREATE INDEX api_keys_account ON api_keys (account_id, created_at);

-- An account's own daily invitation budget (null: the server's
-- ACCOUNT_DAILY_INVITATIONS; 0: unlimited).
ALTER TABLE accounts ADD COLUMN daily_invitations BIGINT;

-- Every queueing of invitations (an import, a re-send) with how many it
-- queued: the rolling 24-hour budget is the sum of the last day's rows.
CREATE TABLE budget_charges (
    id TEXT PRIMARY KEY NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    charged_at TIMESTAMP NOT NULL,
    amount BIGINT NOT NULL
);
CREATE INDEX budget_charges_account_time ON budget_charges (account_id, charged_at);
