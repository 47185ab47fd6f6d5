-- Back to the database's own collation.
ALTER TABLE accounts ALTER COLUMN id TYPE TEXT COLLATE "default";
ALTER TABLE api_keys
    ALTER COLUMN id TYPE TEXT COLLATE "default",
    ALTER COLUMN account_id TYPE TEXT COLLATE "default",
    ALTER COLUMN key_hash TYPE TEXT COLLATE "default";
ALTER TABLE users
    ALTER COLUMN id TYPE TEXT COLLATE "default",
    ALTER COLUMN account_id TYPE TEXT COLLATE "default",
    ALTER COLUMN email_key TYPE TEXT COLLATE "default";
ALTER TABLE suppressions
    ALTER COLUMN account_id TYPE TEXT COLLATE "default",
    ALTER COLUMN email_key TYPE TEXT COLLATE "default";
ALTER TABLE imports
    ALTER COLUMN id TYPE TEXT COLLATE "default",
    ALTER COLUMN account_id TYPE TEXT COLLATE "default",
    ALTER COLUMN idempotency_key TYPE TEXT COLLATE "default";
ALTER TABLE import_entries ALTER COLUMN import_id TYPE TEXT COLLATE "default";
ALTER TABLE invitations
    ALTER COLUMN id TYPE TEXT COLLATE "default",
    ALTER COLUMN account_id TYPE TEXT COLLATE "default",
    ALTER COLUMN import_id TYPE TEXT COLLATE "default",
    ALTER COLUMN email_key TYPE TEXT COLLATE "default",
    ALTER COLUMN batch_id TYPE TEXT COLLATE "default",
    ALTER COLUMN token_hash TYPE TEXT COLLATE "default";
ALTER TABLE budget_charges
    ALTER COLUMN id TYPE TEXT COLLATE "default",
    ALTER COLUMN account_id TYPE TEXT COLLATE "default";
ALTER TABLE webhook_events
    ALTER COLUMN provider TYPE TEXT COLLATE "default",
    ALTER COLUMN event_id TYPE TEXT COLLATE "default";
