-- RFC 8705 certificate-bound access tokens and the issuance endpoint's
-- one-time join tokens (docs/mtls.md).

ALTER TABLE clients ADD COLUMN certificate_bound boolean NOT NULL DEFAULT false;

CREATE TABLE join_tokens (
	hash       text        PRIMARY KEY,
	name       text        NOT NULL,
	created_at timestamptz NOT NULL,
	expires_at timestamptz NOT NULL,
	used_at    timestamptz
);

CREATE INDEX join_tokens_expires_at ON join_tokens (expires_at);
