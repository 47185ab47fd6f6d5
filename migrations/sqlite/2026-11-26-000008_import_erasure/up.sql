-- When an import's report and its invitees' addresses were erased
-- (DELETE /imports/{id} or the REPORT_RETENTION_DAYS sweep); its row and
-- counts stay. The sweep finds the old imports not yet erased by creation.
ALTER TABLE imports ADD COLUMN erased_at TIMESTAMP;
CREATE INDEX imports_retention ON imports (created_at) WHERE erased_at IS NULL;
