-- The records of the complete authorization server: client settings,
-- authorization codes, consents, opaque access tokens, the event log, login
-- throttling and the one-time identifier cache. Durations are bigint
-- nanoseconds; an optional document (jwks, claims, data) is NULL when absent
-- and kept byte for byte (bytea, not jsonb).

ALTER TABLE clients
	ADD COLUMN auth_method          text    NOT NULL DEFAULT '',
	ADD COLUMN jwks                 bytea,
	ADD COLUMN access_token_ttl     bigint  NOT NULL DEFAULT 0,
	ADD COLUMN refresh_token_ttl    bigint  NOT NULL DEFAULT 0,
	ADD COLUMN refresh_absolute_ttl bigint  NOT NULL DEFAULT 0,
	ADD COLUMN exchange_audiences   text[]  NOT NULL DEFAULT '{}',
	ADD COLUMN trusted_proxy        boolean NOT NULL DEFAULT false;

-- ListSessions and RevokeUserSessions find a user's tokens; DeleteExpired
-- finds expired ones.
CREATE INDEX refresh_tokens_user_id ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);

CREATE TABLE auth_codes (
	hash                  text        PRIMARY KEY,
	client_id             text        NOT NULL,
	user_id               text        NOT NULL,
	redirect_uri          text        NOT NULL,
	scopes                text[]      NOT NULL,
	nonce                 text        NOT NULL,
	code_challenge        text        NOT NULL,
	code_challenge_method text        NOT NULL,
	auth_time             timestamptz NOT NULL,
	created_at            timestamptz NOT NULL,
	expires_at            timestamptz NOT NULL,
	redeemed_at           timestamptz,
	family_id             text        NOT NULL
);

CREATE INDEX auth_codes_expires_at ON auth_codes (expires_at);

CREATE TABLE consents (
	user_id    text        NOT NULL,
	client_id  text        NOT NULL,
	scopes     text[]      NOT NULL,
	granted_at timestamptz NOT NULL,
	PRIMARY KEY (user_id, client_id)
);

CREATE TABLE access_tokens (
	hash       text        PRIMARY KEY,
	client_id  text        NOT NULL,
	subject    text        NOT NULL,
	family_id  text        NOT NULL,
	claims     bytea,
	created_at timestamptz NOT NULL,
	expires_at timestamptz NOT NULL,
	revoked_at timestamptz
);

CREATE INDEX access_tokens_family_id ON access_tokens (family_id);
CREATE INDEX access_tokens_expires_at ON access_tokens (expires_at);

-- AppendEvent locks the table against other appends, so IDs commit in order.
CREATE TABLE events (
	id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	type       text        NOT NULL,
	subject    text        NOT NULL,
	session_id text        NOT NULL,
	client_id  text        NOT NULL,
	token_id   text        NOT NULL,
	data       bytea,
	created_at timestamptz NOT NULL
);

CREATE INDEX events_created_at ON events (created_at);

-- expires_at is when the state stops mattering: the later of
-- last_failure + window (after which the count restarts) and locked_until.
CREATE TABLE throttles (
	key          text        PRIMARY KEY,
	failures     integer     NOT NULL,
	last_failure timestamptz NOT NULL,
	locked_until timestamptz NOT NULL,
	expires_at   timestamptz NOT NULL
);

CREATE INDEX throttles_expires_at ON throttles (expires_at);

CREATE TABLE used_jtis (
	id         text        PRIMARY KEY,
	expires_at timestamptz NOT NULL
);

CREATE INDEX used_jtis_expires_at ON used_jtis (expires_at);
