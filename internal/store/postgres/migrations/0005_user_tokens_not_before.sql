-- The instant up to which the user's access tokens are refused, NULL if
-- never: set with a password change, a disabling, a roles change and the
-- revocation of all the user's sessions.
ALTER TABLE users ADD COLUMN tokens_not_before timestamptz;
