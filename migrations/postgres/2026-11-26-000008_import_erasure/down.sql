DROP INDEX imports_retention;
ALTER TABLE imports DROP COLUMN erased_at;
