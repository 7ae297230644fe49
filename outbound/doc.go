// Package outbound is for a service's outgoing calls: it puts an access
// token on each request so the callee can authorize it, in the shape of
// golang.org/x/oauth2's Transport — but every TokenSource takes the request's
// context.
//
// Three sources cover the three ways a service calls another (DESIGN.md,
// flow 6):
//
//   - Relay passes on the caller's own token, found in the context by
//     resource.Middleware (the callee must accept the same audience);
//   - Exchange trades the caller's token for one whose audience is the
//     callee (OAuth 2.0 Token Exchange, RFC 8693), cached per caller token
//     and audience, so the callee sees the user's identity with an "act"
//     claim naming this service;
//   - ClientCredentials gets the service's own token (RFC 6749 §4.4) when it
//     acts for itself, cached and refreshed before it expires.
//
// ClientCredentials with a Certificate gets certificate-bound tokens
// (OAuth 2.0 Mutual-TLS, RFC 8705 §3), optionally authenticating with the
// certificate alone (tls_client_auth, §2.1): a stolen token is useless
// without the certificate's key. MTLSTransport carries such tokens to other
// services on connections that present the certificate they are bound to,
// across renewals.
package outbound
