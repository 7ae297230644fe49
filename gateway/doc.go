// Package gateway is Gatehouse's API gateway: a reverse proxy that
// authenticates every request at the edge, applies per-route rules, and
// forwards a verified access token to the services behind it.
//
// The whole request path is in gateway.go (ServeHTTP): answer the gateway's
// own paths (/healthz, /readyz, the phantom-token JWKS); match the route —
// path prefixes and net/http.ServeMux patterns, see Route; pick the rule;
// authenticate (Basic credentials become a password grant at the
// authorization server, RFC 6749 §4.3, cached per credential; a Bearer JWT,
// RFC 6750 and RFC 9068, is verified locally; an opaque bearer token is
// introspected, RFC 7662); rate-limit per identity; authorize by roles and
// scopes; then proxy with "Authorization: Bearer <access token>" — for an
// opaque token, a short-lived phantom JWT signed by the gateway — and every
// incoming identity header stripped. Each request leaves an access log line
// and Prometheus metrics (observe.go, metrics.go).
//
// With Config.Session enabled it also serves browsers (session.go, login.go,
// csrf.go, retry.go): a login form whose password grant sets the tokens in
// __Host- cookies, refresh of expired access tokens before forwarding
// (RFC 6749 §1.5 steps G–H, one grant per refresh token at a time) and after
// an upstream refused one (step F), logout with revocation (RFC 7009), and
// same-origin checks for cookie-authenticated unsafe requests.
// docs/sessions.md describes it for operators.
//
// The gateway talks to the authorization server over HTTP only, through
// discovery, the token, introspection and revocation endpoints, so it
// works with any standard server; the claims carrying roles and the username
// are configurable. AtomicHandler swaps in a new Gateway without dropping
// the requests in flight, for configuration reloads.
package gateway
