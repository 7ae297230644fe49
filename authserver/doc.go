// Package authserver is Gatehouse's OAuth 2.0 authorization server with
// OpenID Connect discovery. A *Server is an http.Handler; New builds one from
// a Config.
//
// Implemented so far:
//   - RFC 8414 and OpenID Connect Discovery 1.0 metadata at
//     /.well-known/oauth-authorization-server and
//     /.well-known/openid-configuration, naming every endpoint below;
//   - the JWKS (RFC 7517 §5) with every published signing key;
//   - the token endpoint (RFC 6749 §3.2) with the password (§4.3),
//     client_credentials (§4.4) and refresh_token (§6) grants, client
//     authentication by client_secret_basic and client_secret_post (§2.3.1),
//     and errors per §5.2;
//   - access tokens in the client's format: JWTs per RFC 9068 (typ
//     "at+jwt"), signed with ES256 by default (RS256 and EdDSA selectable),
//     or opaque 256-bit random strings stored by their keyed hash with the
//     claims a JWT would carry; lifetimes per client (access, refresh idle,
//     refresh absolute), the server's when the client names none;
//   - token introspection (RFC 7662) for authenticated clients, for JWT and
//     opaque access tokens and for refresh tokens;
//   - token revocation (RFC 7009): a refresh token ends its whole session
//     (its family and the family's access tokens), an access token ends
//     alone; a JWT or a session is revoked by a marker kept in the store
//     until every token it covers has expired;
//   - token exchange (RFC 8693) for delegation: an access token for a
//     narrower audience and scope that keeps the user and names the acting
//     client in "act";
//   - an append-only log of security events (package secevent) for every
//     revocation, reuse detection included;
//   - refresh-token rotation with reuse detection per RFC 9700 §4.14.2: a
//     rotated token presented again revokes its whole family, except within
//     a short grace window in which a retry gets the same successor.
//
// Every request to the token endpoint runs one pipeline: parse the form,
// authenticate the client, check the grant is allowed for the client, check
// the requested scopes, run the grant, write the response. No grant can skip
// a shared check.
package authserver
