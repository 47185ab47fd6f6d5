DROP INDEX invitations_open_address;
