-- RFC 8705 certificate-bound access tokens and the issuance endpoint's
-- one-time join tokens (docs/mtls.md).

ALTER TABLE clients ADD COLUMN certificate_bound INTEGER NOT NULL DEFAULT 0;

CREATE TABLE join_tokens (
	hash       TEXT    PRIMARY KEY,
	name       TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	used_at    INTEGER
) STRICT;

CREATE INDEX join_tokens_expires_at ON join_tokens (expires_at);
