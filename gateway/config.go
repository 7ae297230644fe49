package gateway

import (
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/resource"
)

// Config configures a Gateway. Issuer, Audience and Routes are required;
// ClientID and ClientSecret are required for Basic credentials and opaque
// tokens to work. Validate reports every problem at once.
type Config struct {
	// Issuer of the authorization server whose tokens the gateway accepts.
	Issuer string
	// Audience lists accepted "aud" values of incoming access tokens.
	Audience []string
	// ClientID and ClientSecret are the gateway's own confidential client,
	// used for password grants on behalf of Basic clients and to introspect
	// opaque tokens.
	ClientID     string
	ClientSecret string
	// TokenEndpointAuthMethod is how the gateway authenticates at the token
	// endpoint: "client_secret_basic" (if empty) or "client_secret_post",
	// for servers that read client credentials only from the form.
	TokenEndpointAuthMethod string
	// TokenURL of the authorization server; if empty, read from discovery.
	TokenURL string
	// RevocationURL of the authorization server (RFC 7009), where logout
	// revokes the session's refresh token; if empty, revocation_endpoint
	// from discovery.
	RevocationURL string
	// Session configures browser sessions; off unless Session.Enabled.
	Session SessionConfig
	// RolesClaim names the claim of the authorization server's tokens that
	// holds the caller's roles, with dots for nested objects (Keycloak:
	// "realm_access.roles"). If empty, "roles".
	RolesClaim string
	// UsernameClaim names the claim holding the username. If empty,
	// "preferred_username" in JWTs and "username" in introspection answers.
	UsernameClaim string
	// AccessTokenTypes lists the accepted "typ" headers of JWT access
	// tokens. If empty, only "at+jwt" (RFC 9068). Add "JWT" only for an
	// authorization server that types its access tokens so, and read
	// resource.Config.AccessTokenTypes first: it also admits the server's
	// other JWTs for the same audience.
	AccessTokenTypes []string
	// Opaque, if not nil, accepts bearer tokens that are not JWTs: they are
	// introspected and replaced by phantom tokens (see Opaque). If nil, such
	// tokens are refused.
	Opaque *Opaque
	// Routes are matched as documented on Route.
	Routes []Route
	// Verifier checks bearer JWTs; if nil, a resource.Verifier for Issuer
	// and Audience with the claim names and types above.
	Verifier resource.TokenVerifier
	// Revocations, if set, refuses revoked tokens (package ssf's Receiver
	// implements it): it is checked after every verification, cache hits
	// included, and before every use of a Basic-credential cache entry.
	Revocations resource.Revocations
	// Transport carries requests to the upstreams; if nil, NewTransport().
	// An *http.Transport is used through clones that bound the wait for
	// response headers (one per distinct timeout); any other RoundTripper
	// as it is, with a timer per request.
	Transport http.RoundTripper
	// UpstreamTimeout bounds the wait for an upstream's response headers
	// (the body may take longer); a route may set its own. Exceeding it is
	// answered 504. If zero, 60s.
	UpstreamTimeout time.Duration
	// HTTPClient calls the authorization server; if nil, a client with a
	// 10s timeout.
	HTTPClient *http.Client
	// StripHeaders are removed from every request before it is forwarded,
	// in addition to Authorization and the built-in identity headers
	// (X-User, X-Forwarded-User, X-Remote-User, X-Auth-*, X-Gatehouse-*, ...).
	StripHeaders []string
	// BasicCacheSize bounds the Basic-credential token cache. If zero, 10000.
	BasicCacheSize int
	// MaxBodyBytes bounds request bodies forwarded upstream. If zero, 10 MiB.
	MaxBodyBytes int64
	// RateLimit limits the requests of each identity — the verified subject,
	// else the client's address — on every route without its own limit.
	// The zero value sets no limit.
	RateLimit RateLimit
	// RateLimitKeys bounds how many identities each limit tracks. If zero,
	// 100000.
	RateLimitKeys int
	// Registerer receives the gateway's Prometheus metrics. Gateways
	// sharing a Registerer (one replacing another on reload) share the
	// metrics. If nil, the metrics are kept but not exported.
	Registerer prometheus.Registerer
	// AccessLog, if not nil, gets one line per request: method, path (never
	// the query), route, status, duration, auth method, subject, outcome
	// and client address. Never a token or a password.
	AccessLog *slog.Logger
	// Logger receives errors and denials; if nil, slog.Default().
	Logger *slog.Logger
	// Now is the clock; if nil, time.Now.
	Now func() time.Time
}

// Opaque configures opaque access tokens, in the phantom-token pattern: a
// bearer token that is not a JWT is introspected at the authorization
// server (RFC 7662) with the gateway's client credentials, and the gateway
// forwards in its place a short-lived JWT of its own — a phantom token —
// signed with SigningKey, typed "at+jwt", issued by Issuer for the route's
// audience, carrying the subject, client, scopes, roles, username and
// session of the introspection answer. Services verify phantom tokens like
// any access token (resource.Verifier for Issuer, with the JWKS the gateway
// publishes at JWKSPath) and never see or introspect an opaque token.
type Opaque struct {
	// IntrospectionURL; if empty, introspection_endpoint from discovery.
	IntrospectionURL string
	// CacheTTL is how long an active introspection answer is reused,
	// never past the token's expiry: a revoked opaque token is refused at
	// the gateway within it. If zero, 30s; negative turns the cache off.
	CacheTTL time.Duration
	// CacheSize bounds the introspection cache and the phantom-token cache.
	// If zero, 10000.
	CacheSize int
	// Issuer is the "iss" of phantom tokens, an identifier of this gateway
	// (such as its internal URL). Required; it must differ from the
	// authorization server's issuer.
	Issuer string
	// TTL is the lifetime of a phantom token, at most 60s, and never past
	// the opaque token's expiry. If zero, 60s.
	TTL time.Duration
	// SigningKey signs phantom tokens: an ECDSA P-256 or P-384, RSA (2048
	// bits or more) or Ed25519 private key. If nil, New generates an ES256
	// key that lives as long as the Gateway; replicas behind one JWKS URL,
	// and a gateway that reloads its configuration, need one shared key.
	SigningKey crypto.Signer
	// JWKSPath is where the gateway publishes the public half of
	// SigningKey. If empty, DefaultJWKSPath.
	JWKSPath string
}

// DefaultJWKSPath is where a gateway publishes its phantom-token keys when
// Opaque.JWKSPath is empty.
const DefaultJWKSPath = "/.well-known/gatehouse-gateway/jwks.json"

// maxPhantomTTL bounds the lifetime of phantom tokens.
const maxPhantomTTL = 60 * time.Second

// RateLimit is a token bucket per identity: Rate requests per second on
// average, up to Burst at once. A request beyond it is answered 429 with
// Retry-After.
type RateLimit struct {
	// Rate in requests per second; zero (or less) sets no limit.
	Rate float64
	// Burst is the bucket's size. If zero, Rate rounded up (at least 1).
	Burst int
}

// Route sends the requests it matches to one upstream.
//
// A route matches by Prefix or by Pattern; exactly one is set. Routes are
// tried in the order of Config.Routes and the first match wins, with one
// refinement for patterns: all pattern routes are matched by one
// http.ServeMux, so of the pattern routes only the most specific pattern
// that matches is a candidate (ServeMux precedence: "/orders/new" beats
// "/orders/{id}", "GET /orders/{id}" beats "/orders/{id}"), in its place in
// the order. Two patterns that match some request alike, neither more
// specific, are refused by Validate.
//
// Only clean paths match: a request whose path has a "." or ".." segment,
// an empty segment, a backslash or an encoded slash matches no route.
type Route struct {
	// Name labels the route in metrics and the access log. If empty, the
	// Pattern or the Prefix.
	Name string
	// Prefix matches the path equal to it or below it on a segment boundary:
	// "/api/orders" matches "/api/orders" and "/api/orders/7", not
	// "/api/ordersX".
	Prefix string
	// Pattern is a net/http.ServeMux pattern, [METHOD ][HOST]/PATH with
	// wildcards: "GET /api/orders/{id}", "/files/{path...}", "/{$}". A
	// method narrows the route to it (GET also matches HEAD); a request
	// with another method is matched by the routes after it, if any.
	Pattern string
	// Upstream is the base URL requests are forwarded to.
	Upstream string
	// StripPrefix is removed from the path before forwarding; it must be a
	// prefix of Prefix, or of the literal start of Pattern's path (before
	// its first wildcard).
	StripPrefix string
	// Audience is the "aud" of the phantom tokens forwarded on this route
	// (Config.Opaque). If empty, Config.Audience.
	Audience string
	// Timeout bounds the wait for this upstream's response headers. If
	// zero, Config.UpstreamTimeout.
	Timeout time.Duration
	// RateLimit, if not nil, replaces Config.RateLimit on this route, with
	// buckets of its own; a zero Rate turns limiting off for the route.
	RateLimit *RateLimit
	// Rules are checked in order; the first whose Methods include the
	// request's method decides. A route without rules admits every
	// authenticated caller; a route with rules denies a method none names.
	Rules []Rule
	// Transport for this upstream; if nil, Config.Transport.
	Transport http.RoundTripper
}

// label returns the route's name for metrics and logs.
func (r Route) label() string {
	switch {
	case r.Name != "":
		return r.Name
	case r.Pattern != "":
		return r.Pattern
	default:
		return r.Prefix
	}
}

// Rule is an access rule of a route.
type Rule struct {
	// Methods the rule applies to; empty means every method.
	Methods []string
	// Public admits requests without credentials; the request is forwarded
	// without any identity.
	Public bool
	// Roles: the caller needs at least one of them (if any are listed).
	Roles []string
	// Scopes: the caller's token needs every one of them.
	Scopes []string
}

// RouteError is a problem with one route, as Validate reports it.
type RouteError struct {
	Route int    // 1-based index in Config.Routes
	Label string // the route's Name, Pattern or Prefix
	Rule  int    // 1-based index in the route's Rules; 0 if not about a rule
	Err   error
}

func (e *RouteError) Error() string {
	if e.Rule > 0 {
		return fmt.Sprintf("route %d (%s): rule %d: %v", e.Route, e.Label, e.Rule, e.Err)
	}
	return fmt.Sprintf("route %d (%s): %v", e.Route, e.Label, e.Err)
}

func (e *RouteError) Unwrap() error { return e.Err }

// Validate reports every problem of c at once, joined; route problems are
// *RouteError values. New calls it.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Issuer == "" {
		add("issuer is required")
	}
	if len(c.Audience) == 0 && c.Verifier == nil {
		add("audience is required")
	}
	if len(c.Routes) == 0 {
		add("at least one route is required")
	}
	if (c.ClientID == "") != (c.ClientSecret == "") {
		add("client_id and client_secret go together")
	}
	switch c.TokenEndpointAuthMethod {
	case "", oauth.AuthClientSecretBasic, oauth.AuthClientSecretPost:
	default:
		add("token_endpoint_auth_method %q: want %s or %s", c.TokenEndpointAuthMethod, oauth.AuthClientSecretBasic, oauth.AuthClientSecretPost)
	}
	if slices.Contains(c.AccessTokenTypes, "") {
		add("access_token_types holds an empty type")
	}
	if c.UpstreamTimeout < 0 || c.MaxBodyBytes < 0 || c.BasicCacheSize < 0 || c.RateLimitKeys < 0 {
		add("upstream_timeout, max_body_bytes, basic_cache_size and rate_limit_keys cannot be negative")
	}
	if err := c.RateLimit.validate(); err != nil {
		add("rate_limit: %w", err)
	}
	if c.Opaque != nil {
		errs = append(errs, c.Opaque.validate(c)...)
	}
	errs = append(errs, c.validateRoutes()...)
	if err := c.Session.setDefaults(c); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("gateway config: %w", err)
	}
	return nil
}

func (o *Opaque) validate(c *Config) []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf("opaque tokens: "+format, args...)) }
	if c.ClientID == "" {
		add("client_id and client_secret are required to introspect")
	}
	if len(c.Audience) == 0 {
		add("audience is required to check opaque tokens and address phantom tokens")
	}
	if o.Issuer == "" {
		add("a phantom-token issuer is required")
	} else if o.Issuer == c.Issuer {
		add("the phantom-token issuer must differ from the authorization server's %q", c.Issuer)
	}
	if o.TTL < 0 || o.TTL > maxPhantomTTL {
		add("phantom-token TTL %v: want at most %v", o.TTL, maxPhantomTTL)
	}
	if o.CacheSize < 0 {
		add("cache size cannot be negative")
	}
	if o.JWKSPath != "" && (!strings.HasPrefix(o.JWKSPath, "/") || path.Clean(o.JWKSPath) != o.JWKSPath ||
		o.JWKSPath == healthPath || o.JWKSPath == readyPath) {
		add("jwks path %q must be a clean absolute path other than %s and %s", o.JWKSPath, healthPath, readyPath)
	}
	return errs
}

func (l RateLimit) validate() error {
	if l.Rate != l.Rate || l.Rate > 1e9 || l.Burst < 0 {
		return fmt.Errorf("rate %v, burst %d: want a rate of at most 1e9 per second and a burst of 0 or more", l.Rate, l.Burst)
	}
	return nil
}

// validateRoutes checks each route, then registers the patterns in one
// ServeMux, as New does, to find conflicts between them.
func (c *Config) validateRoutes() []error {
	var errs []error
	mux := http.NewServeMux()
	for i, r := range c.Routes {
		routeErr := func(rule int, err error) error {
			return &RouteError{Route: i + 1, Label: r.label(), Rule: rule, Err: err}
		}
		if err := r.validate(); err != nil {
			errs = append(errs, routeErr(0, err))
			continue
		}
		if r.Audience != "" && c.Opaque == nil {
			errs = append(errs, routeErr(0, errors.New("audience is the audience of phantom tokens: configure opaque tokens, or remove it")))
		}
		for j, rule := range r.Rules {
			if err := rule.validate(); err != nil {
				errs = append(errs, routeErr(j+1, err))
			}
		}
		if r.Pattern != "" {
			if err := handlePattern(mux, r.Pattern, http.NotFoundHandler()); err != nil {
				errs = append(errs, routeErr(0, err))
			}
		}
	}
	return errs
}

var methods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
	http.MethodPatch, http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace}

func (r Route) validate() error {
	var literal string // the path the route names before any wildcard
	switch {
	case (r.Prefix == "") == (r.Pattern == ""):
		return errors.New("set exactly one of prefix and pattern")
	case r.Prefix != "":
		if !strings.HasPrefix(r.Prefix, "/") || strings.Contains(r.Prefix, "..") || strings.Contains(r.Prefix, "//") {
			return fmt.Errorf("prefix %q must be an absolute, clean path", r.Prefix)
		}
		literal = r.Prefix
	default:
		p := patternPath(r.Pattern)
		if p == "" || strings.Contains(p, "//") || strings.Contains(p, "/./") || strings.Contains(p, "/../") ||
			strings.HasSuffix(p, "/.") || strings.HasSuffix(p, "/..") {
			return fmt.Errorf("pattern %q must have an absolute, clean path", r.Pattern)
		}
		literal, _, _ = strings.Cut(p, "{")
	}
	u, err := url.Parse(r.Upstream)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("upstream %q must be an http or https URL", r.Upstream)
	}
	if r.StripPrefix != "" && !strings.HasPrefix(literal, r.StripPrefix) {
		return fmt.Errorf("strip_prefix %q is not a prefix of %q", r.StripPrefix, literal)
	}
	if r.Timeout < 0 {
		return fmt.Errorf("timeout %v cannot be negative", r.Timeout)
	}
	if r.RateLimit != nil {
		if err := r.RateLimit.validate(); err != nil {
			return fmt.Errorf("rate_limit: %w", err)
		}
	}
	return nil
}

func (rule Rule) validate() error {
	for _, m := range rule.Methods {
		if !slices.Contains(methods, m) {
			return fmt.Errorf("unknown method %q", m)
		}
	}
	if rule.Public && (len(rule.Roles) > 0 || len(rule.Scopes) > 0) {
		return errors.New("a public rule cannot require roles or scopes")
	}
	return nil
}

// patternPath returns the path of a ServeMux pattern ("GET host/p" → "/p"),
// or "" if it has none.
func patternPath(pattern string) string {
	if _, rest, ok := strings.Cut(pattern, " "); ok {
		pattern = strings.TrimLeft(rest, " \t")
	}
	if i := strings.IndexByte(pattern, '/'); i >= 0 {
		return pattern[i:]
	}
	return ""
}

// registeredAt is the source location ServeMux puts in its messages, which
// would name our code rather than the operator's configuration.
var registeredAt = regexp.MustCompile(` \(registered at [^)]*\)`)

// handlePattern adds pattern to mux, turning ServeMux's panic on an invalid or
// conflicting pattern into an error.
func handlePattern(mux *http.ServeMux, pattern string, h http.Handler) (err error) {
	defer func() {
		if v := recover(); v != nil {
			msg := registeredAt.ReplaceAllString(fmt.Sprint(v), "")
			err = errors.New(strings.Join(strings.Fields(msg), " "))
		}
	}()
	mux.Handle(pattern, h)
	return nil
}

// setDefaults fills the zero fields of a valid Config.
func (c *Config) setDefaults() {
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if c.Transport == nil {
		c.Transport = NewTransport()
	}
	if c.UpstreamTimeout == 0 {
		c.UpstreamTimeout = 60 * time.Second
	}
	if c.BasicCacheSize == 0 {
		c.BasicCacheSize = 10000
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 10 << 20
	}
	if c.Session.RetryBodyBytes == 0 { // for Basic retries when sessions are off
		c.Session.RetryBodyBytes = 64 << 10
	}
	if c.RateLimitKeys == 0 {
		c.RateLimitKeys = 100000
	}
	if c.Registerer == nil {
		c.Registerer = prometheus.NewRegistry()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if o := c.Opaque; o != nil {
		o2 := *o // the caller's Opaque stays as it was
		if o2.TTL == 0 {
			o2.TTL = maxPhantomTTL
		}
		if o2.CacheSize == 0 {
			o2.CacheSize = 10000
		}
		if o2.JWKSPath == "" {
			o2.JWKSPath = DefaultJWKSPath
		}
		c.Opaque = &o2
	}
}

// NewTransport returns the upstream transport the gateway uses by default:
// many keep-alive connections per upstream, a bounded dial, and HTTP/2 with
// upstreams that offer it over TLS. The wait for response headers is bounded
// per route by the gateway (Config.UpstreamTimeout), not by the transport.
func NewTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 256
	t.IdleConnTimeout = 90 * time.Second
	t.ForceAttemptHTTP2 = true
	return t
}
