// Package resource is what a service imports to accept Gatehouse access
// tokens: a Verifier that checks RFC 9068 JWT access tokens against the
// issuer's JWKS without calling anyone on the request path, a Middleware that
// puts the caller's *Principal in the request context (FromContext), and
// Authorizers that decide by role and scope.
//
// It speaks only the standards — OpenID Connect / RFC 8414 discovery, JWKS
// (RFC 7517), RFC 9068 access tokens, RFC 6750 bearer usage and errors — so it
// verifies tokens from any compliant authorization server; the claims that
// carry roles and the username are configurable.
//
// For per-object decisions, an ACL (owner plus grants to subjects or roles)
// is checked with an ACLPolicy that holds the admin override. Services that
// receive opaque tokens (deployed without the gateway's phantom tokens) use
// an Introspector (RFC 7662, cached), or Either to accept both kinds. A
// service that accepts the tokens of two issuers — the authorization
// server's and the gateway's phantom tokens — chains their Verifiers with
// AnyVerifier.
//
// A certificate-bound token (RFC 8705 §3: cnf with x5t#S256) is accepted
// only from a TLS connection that presented that certificate: Middleware and
// package grpcauth pass the connection's client certificate to the
// verifier, and a verifier refuses a bound token it is not given one for.
//
// Failures follow RFC 6750 §3: a missing token gets 401 with a bare Bearer
// challenge, a bad one 401 with error="invalid_token", a denied one 403 (with
// error="insufficient_scope" when a scope is missing).
package resource
