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
//   - JWT access tokens per RFC 9068 (typ "at+jwt"), signed with ES256 by
//     default (RS256 and EdDSA selectable);
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
//   - an admin API on a listener of its own (AdminHandler), audit events as
//     structured log lines, Prometheus metrics, and garbage collection of
//     expired records (Run).
//
// Every request to the token endpoint runs one pipeline: parse the form,
// authenticate the client, check the grant is allowed for the client, check
// the requested scopes, run the grant, write the response. No grant can skip
// a shared check.
package authserver
