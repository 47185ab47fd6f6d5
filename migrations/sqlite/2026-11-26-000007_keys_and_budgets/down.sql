DROP TABLE budget_charges;
ALTER TABLE accounts DROP COLUMN daily_invitations;
DROP INDEX api_keys_account;
ALTER TABLE api_keys DROP COLUMN last_used_at;
ALTER TABLE api_keys DROP COLUMN prefix;
ALTER TABLE api_keys DROP COLUMN scopes;
ALTER TABLE api_keys DROP COLUMN name;
