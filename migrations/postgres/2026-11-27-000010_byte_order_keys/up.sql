-- Identifiers (UUIDs, key hashes, provider event ids) and address keys
-- are only ever compared for equality and paged through in byte order;
-- none of them is text a person sorts. Under the database's own locale
-- (C.UTF-8, en_US.UTF-8, ...) every comparison in their indexes went
-- through the C library's strcoll and every sort of them went without
-- PostgreSQL's abbreviated keys: an import's sort of its addresses and
-- its index inserts cost twice what byte order costs, and how much
-- depended on the server's locale. The "C" collation compares bytes.
-- Each ALTER rebuilds the indexes of its columns (not the tables), under
-- an exclusive lock of the table.
ALTER TABLE accounts ALTER COLUMN id TYPE TEXT COLLATE "C";
ALTER TABLE api_keys
    ALTER COLUMN id TYPE TEXT COLLATE "C",
    ALTER COLUMN account_id TYPE TEXT COLLATE "C",
    ALTER COLUMN key_hash TYPE TEXT COLLATE "C";
ALTER TABLE users
    ALTER COLUMN id TYPE TEXT COLLATE "C",
    ALTER COLUMN account_id TYPE TEXT COLLATE "C",
    ALTER COLUMN email_key TYPE TEXT COLLATE "C";
ALTER TABLE suppressions
    ALTER COLUMN account_id TYPE TEXT COLLATE "C",
    ALTER COLUMN email_key TYPE TEXT COLLATE "C";
ALTER TABLE imports
    ALTER COLUMN id TYPE TEXT COLLATE "C",
    ALTER COLUMN account_id TYPE TEXT COLLATE "C",
    ALTER COLUMN idempotency_key TYPE TEXT COLLATE "C";
ALTER TABLE import_entries ALTER COLUMN import_id TYPE TEXT COLLATE "C";
ALTER TABLE invitations
    ALTER COLUMN id TYPE TEXT COLLATE "C",
    ALTER COLUMN account_id TYPE TEXT COLLATE "C",
    ALTER COLUMN import_id TYPE TEXT COLLATE "C",
    ALTER COLUMN email_key TYPE TEXT COLLATE "C",
    ALTER COLUMN batch_id TYPE TEXT COLLATE "C",
    ALTER COLUMN token_hash TYPE TEXT COLLATE "C";
ALTER TABLE budget_charges
    ALTER COLUMN id TYPE TEXT COLLATE "C",
    ALTER COLUMN account_id TYPE TEXT COLLATE "C";
ALTER TABLE webhook_events
    ALTER COLUMN provider TYPE TEXT COLLATE "C",
    ALTER COLUMN event_id TYPE TEXT COLLATE "C";
