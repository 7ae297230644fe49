// Package authserver is Gatehouse's OAuth 2.0 authorization server with
// OpenID Connect. A *Server is an http.Handler; New builds one from a Config.
//
// Implemented so far:
//   - RFC 8414 and OpenID Connect Discovery 1.0 metadata at
//     /.well-known/oauth-authorization-server and
//     /.well-known/openid-configuration, naming every endpoint below;
//   - the JWKS (RFC 7517 §5) with every published signing key;
//   - the authorization endpoint (RFC 6749 §3.1, §4.1; OpenID Connect Core
//     §3.1.2) for response_type=code, GET or POST: the client and its
//     exactly matching redirect URI are checked first, and until they are,
//     errors are shown as a page, never redirected (§4.1.2.1, §10.15);
//     after, errors go to the redirect URI with the state and the issuer
//     (RFC 9207). PKCE (RFC 7636) with S256 only, required for public
//     clients. prompt (none, login, consent) and max_age are honored;
//     request objects are not supported;
//   - the server's own login and consent pages: HTML without JavaScript or
//     external assets, a strict Content-Security-Policy, no framing, CSRF
//     tokens bound to a cookie (and to the login for consent), the password
//     checked with argon2id as in the password grant, a browser session in
//     a sealed cookie so that the next request skips the login, and consent
//     remembered per user, client and scope;
//   - the end-session endpoint of OpenID Connect RP-Initiated Logout 1.0
//     (end_session_endpoint, GET or POST) with id_token_hint (our issuer,
//     keys and typ "JWT", one audience naming the client; an expired ID
//     token is a valid hint), client_id, post_logout_redirect_uri (exact
//     match of the client's post_logout_redirect_uris, else an error page,
//     never a redirect) and state; logout_hint and ui_locales are ignored.
//     A hint from the current login (same user and auth_time) ends the
//     session at once; otherwise the user confirms on a page protected
//     like the login and consent pages.
//     Logout clears the cookie, records the browser session as ended in
//     the store until it would have expired (so a copy of the cookie stops
//     working), revokes the refresh-token family the hint's sid names, and
//     writes an audit log line. Tokens other clients got through the same
//     browser session are not linked to it and live on (RFC 7009 ends them);
//   - the token endpoint (RFC 6749 §3.2) with the authorization_code
//     (§4.1.3, single use, 60 s, bound to client, redirect URI and PKCE
//     verifier; a replay revokes what the first redemption issued),
//     password (§4.3), client_credentials (§4.4) and refresh_token (§6)
//     grants, and errors per §5.2;
//   - client authentication by the method the client is registered for
//     (RFC 7591 §2): client_secret_basic, client_secret_post (RFC 6749
//     §2.3.1), or none for public clients, which may only use the
//     authorization_code grant with PKCE and refresh what it issued;
//   - OpenID Connect ID tokens (Core §2, typ "JWT") for the openid scope,
//     with nonce, at_hash, auth_time and sid, and the UserInfo endpoint
//     (§5.3); the profile scope releases preferred_username and the roles
//     scope roles;
//   - access tokens in the client's format: JWTs per RFC 9068 (typ
//     "at+jwt"), signed with ES256 by default (RS256 and EdDSA selectable),
//     or opaque 256-bit random strings stored by their keyed hash with the
//     claims a JWT would carry; lifetimes per client (access, refresh idle,
//     refresh absolute), the server's when the client names none;
//   - token introspection (RFC 7662) for authenticated clients, for JWT and
//     opaque access tokens and for refresh tokens, refusing what SSF
//     receivers refuse: a user's access tokens issued up to their last
//     password change, disabling, roles change or revocation of all
//     sessions (store.User.TokensNotBefore), a client's up to its last
//     disabling;
//   - token revocation (RFC 7009): a refresh token ends its whole session
//     (its family and the family's access tokens), an access token ends
//     alone; a JWT or a session is revoked by a marker kept in the store
//     until every token it covers has expired;
//   - token exchange (RFC 8693) for delegation: an access token for a
//     narrower audience and scope that keeps the user and names the acting
//     client in "act";
//   - an append-only log of security events (package secevent) for every
//     revocation, reuse detection included;
//   - a Shared Signals Framework 1.0 transmitter of those events as SETs
//     (RFC 8417): stream management and stream status (SSF §8.1.2),
//     delivery by poll (RFC 8936) with long polling, and by push (RFC 8935)
//     with retries and backoff until Config.PushPauseAfter pauses the
//     stream (Run);
//   - refresh-token rotation with reuse detection per RFC 9700 §4.14.2: a
//     rotated token presented again revokes its whole family, except within
//     a short grace window in which a retry gets the same successor;
//   - private_key_jwt client authentication (RFC 7523 §2.2, RFC 7521 §4.2,
//     OpenID Connect Core §9) with a jti replay cache in the store;
//   - login throttling per username and per end-user address with
//     exponential backoff, shared by replicas through the store (see
//     LoginThrottle and oauth.ParamEndUserIP);
//   - signing-key rotation: a new key is published before it signs, and an
//     old one stays published until every token it signed has expired;
//     keys are reloaded periodically by Run;
//   - OAuth 2.0 Mutual-TLS (RFC 8705, see MTLS): a mutual-TLS listener
//     (MTLSHandler) announced as mtls_endpoint_aliases, access tokens bound
//     to the client's certificate (cnf x5t#S256, §3) and checked where the
//     server itself is the resource, tls_client_auth by SPIFFE ID (§2.1);
//   - certificate issuance for services (CA): authenticated by the
//     service's client_credentials token, a one-time join token, or, over
//     mutual TLS, the certificate it renews;
//   - an admin API on a listener of its own (AdminHandler), audit events as
//     structured log lines, Prometheus metrics, and garbage collection of
//     expired records (Run).
//
// Every request to the token endpoint runs one pipeline: parse the form,
// authenticate the client, check the grant is allowed for the client, check
// the requested scopes, run the grant, write the response. No grant can skip
// a shared check.
package authserver
