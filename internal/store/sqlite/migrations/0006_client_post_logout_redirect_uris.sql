-- The URIs a client may name as post_logout_redirect_uri at the end-session
-- endpoint (OpenID Connect RP-Initiated Logout 1.0 §3.1), as the JSON list
-- the other list columns hold; empty for the clients from before.
ALTER TABLE clients ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]';
