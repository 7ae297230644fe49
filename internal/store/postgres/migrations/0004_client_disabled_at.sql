-- When a client was last disabled, NULL if never: the tokens issued to it up
-- to then stay invalid once it is enabled again.
ALTER TABLE clients ADD COLUMN disabled_at timestamptz;
