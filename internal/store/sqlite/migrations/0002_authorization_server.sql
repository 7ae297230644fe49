-- The records of the complete authorization server: client settings,
-- authorization codes, consents, opaque access tokens, the event log, login
-- throttling and the one-time identifier cache. Times are Unix microseconds
-- (UTC), durations nanoseconds, lists JSON arrays of strings; an optional
-- document (jwks, claims, data) is NULL when absent.

ALTER TABLE clients ADD COLUMN auth_method          TEXT    NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN jwks                 BLOB;
ALTER TABLE clients ADD COLUMN access_token_ttl     INTEGER NOT NULL DEFAULT 0;
ALTER TABLE clients ADD COLUMN refresh_token_ttl    INTEGER NOT NULL DEFAULT 0;
ALTER TABLE clients ADD COLUMN refresh_absolute_ttl INTEGER NOT NULL DEFAULT 0;
ALTER TABLE clients ADD COLUMN exchange_audiences   TEXT    NOT NULL DEFAULT '[]';
ALTER TABLE clients ADD COLUMN trusted_proxy        INTEGER NOT NULL DEFAULT 0;

-- ListSessions and RevokeUserSessions find a user's tokens; DeleteExpired
-- finds expired ones.
CREATE INDEX refresh_tokens_user_id ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);

CREATE TABLE auth_codes (
	hash                  TEXT    PRIMARY KEY,
	client_id             TEXT    NOT NULL,
	user_id               TEXT    NOT NULL,
	redirect_uri          TEXT    NOT NULL,
	scopes                TEXT    NOT NULL,
	nonce                 TEXT    NOT NULL,
	code_challenge        TEXT    NOT NULL,
	code_challenge_method TEXT    NOT NULL,
	auth_time             INTEGER NOT NULL,
	created_at            INTEGER NOT NULL,
	expires_at            INTEGER NOT NULL,
	redeemed_at           INTEGER,
	family_id             TEXT    NOT NULL
) STRICT;

CREATE INDEX auth_codes_expires_at ON auth_codes (expires_at);

CREATE TABLE consents (
	user_id    TEXT    NOT NULL,
	client_id  TEXT    NOT NULL,
	scopes     TEXT    NOT NULL,
	granted_at INTEGER NOT NULL,
	PRIMARY KEY (user_id, client_id)
) STRICT;

CREATE TABLE access_tokens (
	hash       TEXT    PRIMARY KEY,
	client_id  TEXT    NOT NULL,
	subject    TEXT    NOT NULL,
	family_id  TEXT    NOT NULL,
	claims     BLOB,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	revoked_at INTEGER
) STRICT;

CREATE INDEX access_tokens_family_id ON access_tokens (family_id);
CREATE INDEX access_tokens_expires_at ON access_tokens (expires_at);

-- AUTOINCREMENT: an ID is never given twice, even once DeleteExpired has
-- removed the newest events, so a reader's position in the log stays valid.
CREATE TABLE events (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	type       TEXT    NOT NULL,
	subject    TEXT    NOT NULL,
	session_id TEXT    NOT NULL,
	client_id  TEXT    NOT NULL,
	token_id   TEXT    NOT NULL,
	data       BLOB,
	created_at INTEGER NOT NULL
) STRICT;

CREATE INDEX events_created_at ON events (created_at);

-- expires_at is when the state stops mattering: the later of
-- last_failure + window (after which the count restarts) and locked_until.
CREATE TABLE throttles (
	key          TEXT    PRIMARY KEY,
	failures     INTEGER NOT NULL,
	last_failure INTEGER NOT NULL,
	locked_until INTEGER NOT NULL,
	expires_at   INTEGER NOT NULL
) STRICT;

CREATE INDEX throttles_expires_at ON throttles (expires_at);

CREATE TABLE used_jtis (
	id         TEXT    PRIMARY KEY,
	expires_at INTEGER NOT NULL
) STRICT;

CREATE INDEX used_jtis_expires_at ON used_jtis (expires_at);
