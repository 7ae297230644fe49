// Package gateway is Gatehouse's API gateway: a reverse proxy that
// authenticates every request at the edge, applies per-route rules, and
// forwards a verified access token to the services behind it.
//
// The whole request path is in gateway.go: match the route, pick the rule,
// authenticate (Basic credentials become a password grant at the
// authorization server, RFC 6749 §4.3, cached per credential; a Bearer token,
// RFC 6750, is verified locally), authorize by roles and scopes, then proxy
// with "Authorization: Bearer <access token>" and every incoming identity
// header stripped.
//
// The gateway talks to the authorization server over HTTP only, through
// discovery and the token endpoint, so it works with any standard server.
package gateway
