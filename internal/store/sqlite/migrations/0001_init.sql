-- Times are Unix microseconds (UTC); lists are JSON arrays of strings.

CREATE TABLE users (
	id            TEXT    PRIMARY KEY,
	username      TEXT    NOT NULL UNIQUE,
	password_hash TEXT    NOT NULL,
	roles         TEXT    NOT NULL,
	disabled      INTEGER NOT NULL,
	created_at    INTEGER NOT NULL,
	updated_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE clients (
	id                  TEXT    PRIMARY KEY,
	secret_hash         TEXT    NOT NULL,
	public              INTEGER NOT NULL,
	grants              TEXT    NOT NULL,
	scopes              TEXT    NOT NULL,
	redirect_uris       TEXT    NOT NULL,
	audience            TEXT    NOT NULL,
	access_token_format TEXT    NOT NULL,
	disabled            INTEGER NOT NULL,
	created_at          INTEGER NOT NULL,
	updated_at          INTEGER NOT NULL
) STRICT;

CREATE TABLE refresh_tokens (
	hash           TEXT    PRIMARY KEY,
	family_id      TEXT    NOT NULL,
	client_id      TEXT    NOT NULL,
	user_id        TEXT    NOT NULL,
	scopes         TEXT    NOT NULL,
	auth_time      INTEGER NOT NULL,
	created_at     INTEGER NOT NULL,
	expires_at     INTEGER NOT NULL,
	rotated_at     INTEGER,
	successor_hash TEXT    NOT NULL,
	revoked_at     INTEGER
) STRICT;

CREATE INDEX refresh_tokens_family_id ON refresh_tokens (family_id);

CREATE TABLE signing_keys (
	id             TEXT    PRIMARY KEY,
	algorithm      TEXT    NOT NULL,
	public_jwk     BLOB    NOT NULL,
	sealed_private BLOB    NOT NULL,
	created_at     INTEGER NOT NULL,
	active_at      INTEGER NOT NULL,
	retired_at     INTEGER,
	expires_at     INTEGER
) STRICT;

CREATE INDEX signing_keys_created_at ON signing_keys (created_at);
