CREATE TABLE users (
	id            text        PRIMARY KEY,
	username      text        NOT NULL UNIQUE,
	password_hash text        NOT NULL,
	roles         text[]      NOT NULL,
	disabled      boolean     NOT NULL,
	created_at    timestamptz NOT NULL,
	updated_at    timestamptz NOT NULL
);

CREATE TABLE clients (
	id                  text        PRIMARY KEY,
	secret_hash         text        NOT NULL,
	public              boolean     NOT NULL,
	grants              text[]      NOT NULL,
	scopes              text[]      NOT NULL,
	redirect_uris       text[]      NOT NULL,
	audience            text[]      NOT NULL,
	access_token_format text        NOT NULL,
	disabled            boolean     NOT NULL,
	created_at          timestamptz NOT NULL,
	updated_at          timestamptz NOT NULL
);

CREATE TABLE refresh_tokens (
	hash           text        PRIMARY KEY,
	family_id      text        NOT NULL,
	client_id      text        NOT NULL,
	user_id        text        NOT NULL,
	scopes         text[]      NOT NULL,
	auth_time      timestamptz NOT NULL,
	created_at     timestamptz NOT NULL,
	expires_at     timestamptz NOT NULL,
	rotated_at     timestamptz,
	successor_hash text        NOT NULL,
	revoked_at     timestamptz
);

CREATE INDEX refresh_tokens_family_id ON refresh_tokens (family_id);

CREATE TABLE signing_keys (
	id             text        PRIMARY KEY,
	algorithm      text        NOT NULL,
	public_jwk     bytea       NOT NULL,
	sealed_private bytea       NOT NULL,
	created_at     timestamptz NOT NULL,
	active_at      timestamptz NOT NULL,
	retired_at     timestamptz,
	expires_at     timestamptz
);

CREATE INDEX signing_keys_created_at ON signing_keys (created_at);
