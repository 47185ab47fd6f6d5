DROP TABLE invitations;
DROP TABLE import_entries;
DROP TABLE imports;
DROP TABLE users;
DROP TABLE api_keys;
DROP TABLE accounts;
