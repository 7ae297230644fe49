package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path"
	"slices"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/resource"
)

// Gateway is the edge proxy. It is an http.Handler, safe for concurrent use.
type Gateway struct {
	cfg     Config
	routes  []*route
	mux     *http.ServeMux          // matches the pattern routes; nil if there are none
	builtin map[string]http.Handler // paths the gateway answers itself (health.go)
	verify  resource.TokenVerifier  // bearer tokens: JWTs, and opaque ones if configured
	jwt     resource.TokenVerifier  // JWTs alone
	basic   *basicAuth              // nil when no client credentials are configured
	phantom *phantoms               // nil unless opaque tokens are accepted
	metrics *metrics
	strip   map[string]bool // identity headers, by cgiName

	sessions *sessions // nil when browser sessions are off
}

// route is a Route with its proxy built.
type route struct {
	Route
	name     string   // in metrics and the access log
	audience []string // of the phantom tokens forwarded on it
	limiter  *limiter // nil: no rate limit
	proxy    *httputil.ReverseProxy
}

// New returns a Gateway for cfg, or every problem Validate finds. It does no
// I/O: discovery and the JWKS are fetched on first use.
func New(cfg Config) (*Gateway, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("gateway: metrics: %w", err)
	}
	g := &Gateway{cfg: cfg, metrics: m, strip: identityHeaders(cfg.StripHeaders)}
	d := &discovery{issuer: cfg.Issuer, client: cfg.HTTPClient}
	if err := g.newVerifiers(d); err != nil {
		return nil, err
	}
	if cfg.Revocations != nil {
		g.verify = resource.WithRevocations(g.verify, cfg.Revocations)
	}
	if cfg.ClientID != "" {
		g.basic = newBasicAuth(&g.cfg, g.verify, d, m.cacheHook(cacheBasic))
	}
	limit := newLimiter(cfg.RateLimit, cfg.RateLimitKeys, cfg.Now)
	clones := map[transportKey]*http.Transport{}
	for _, r := range cfg.Routes {
		rt := g.newRoute(r, limit, clones)
		g.routes = append(g.routes, rt)
		if r.Pattern != "" {
			if g.mux == nil {
				g.mux = http.NewServeMux()
			}
			handlePattern(g.mux, r.Pattern, matched{rt}) // Validate registered it without error
		}
	}
	if cfg.Session.Enabled {
		g.sessions = newSessions(&g.cfg, g.verify, g.basic)
	}
	if g.sessions != nil || g.basic != nil {
		for _, rt := range g.routes {
			rt.proxy.Transport = &retryTransport{next: rt.proxy.Transport, g: g, rt: rt}
		}
	}
	g.builtin = g.builtins()
	return g, nil
}

// ServeHTTP is the gateway's request path.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if g.sessions != nil {
		if g.sessions.serve(w, r) { // login and logout
			return
		}
		w, r = g.sessions.begin(w, r)
	}
	if h := g.builtin[r.URL.Path]; h != nil { // health, readiness, the phantom-token keys
		h.ServeHTTP(w, r)
		return
	}
	x := g.begin(w, r) // the access log line and the metrics, written at the end
	defer x.end()
	rt := g.match(r)
	if rt == nil {
		x.reply(outcomeNoRoute, &oauth.Error{Code: "not_found", Description: "no route", Status: http.StatusNotFound})
		return
	}
	x.route = rt.name
	rule, ok := rt.rule(r.Method)
	if !ok {
		g.deny(x, r, "no rule for this method")
		return
	}
	if r.ContentLength > g.cfg.MaxBodyBytes {
		x.reply(outcomeTooLarge, &oauth.Error{Code: "request_too_large", Description: "request body too large",
			Status: http.StatusRequestEntityTooLarge})
		return
	}
	r.Body = http.MaxBytesReader(x, r.Body, g.cfg.MaxBodyBytes)
	if rule.Public {
		if g.allow(x, rt, addressIdentity(r)) {
			r.Header.Del("Authorization")
			rt.proxy.ServeHTTP(x, r)
		}
		return
	}
	p, token, br, err := g.authenticate(r)
	if err != nil {
		if g.allow(x, rt, addressIdentity(r)) {
			g.unauthorized(x, r, err)
		}
		return
	}
	x.subject = p.Subject
	if !g.allow(x, rt, subjectIdentity(p.Subject)) {
		return
	}
	if reason := rule.deny(p); reason != "" {
		g.deny(x, r, reason)
		return
	}
	st := sessionFrom(r.Context())
	if st != nil { // for a retry after an upstream 401 (retry.go)
		st.rule = rule
	}
	if br != nil {
		br.rule, br.token = rule, token
		r = r.WithContext(context.WithValue(r.Context(), basicRequestKey{}, br))
	}
	if token, err = g.forwardToken(rt, p, token); err != nil {
		g.unauthorized(x, r, err)
		return
	}
	if !isBearer(r.Header.Get("Authorization"), token) { // Basic, a phantom, or "bearer" spelled otherwise
		r.Header.Set("Authorization", "Bearer "+token)
	}
	rt.proxy.ServeHTTP(x, r)
	if (st != nil && st.retried || br != nil && br.retried) && x.outcome == "" { // the retry reached the upstream
		x.outcome = outcomeRetried
	}
}

// forwardToken returns the token to forward for p: token itself, or the
// phantom token of an opaque one, which never leaves the gateway.
func (g *Gateway) forwardToken(rt *route, p *resource.Principal, token string) (string, error) {
	if g.phantom != nil && !isJWT(token) {
		return g.phantom.token(rt, p, token)
	}
	return token, nil
}

// match returns the route for r (see Route for the order), or nil. Paths
// that are not clean, or that encode a slash, match nothing: they could
// otherwise reach an upstream path another route's rules protect.
func (g *Gateway) match(r *http.Request) *route {
	p := r.URL.Path
	if p == "" || p[0] != '/' || path.Clean(p) != strings.TrimSuffix(p, "/") && p != "/" {
		return nil
	}
	// A backslash, sent as is or as %5C (which leaves RawPath empty), is a
	// path separator to some upstreams.
	if strings.ContainsRune(p, '\\') {
		return nil
	}
	if raw := strings.ToLower(r.URL.RawPath); strings.Contains(raw, "%2f") || strings.Contains(raw, "%5c") {
		return nil
	}
	var pattern *route // the most specific pattern route that matches, if any
	if g.mux != nil {
		if h, _ := g.mux.Handler(r); h != nil {
			if m, ok := h.(matched); ok {
				pattern = m.rt
			}
		}
	}
	for _, rt := range g.routes {
		if rt == pattern || rt.Pattern == "" && underPrefix(p, rt.Prefix) {
			return rt
		}
	}
	return nil
}

// matched marks a pattern route in the gateway's ServeMux, which is only
// asked which pattern matches, never to serve.
type matched struct{ rt *route }

func (matched) ServeHTTP(http.ResponseWriter, *http.Request) {}

// underPrefix reports whether p is prefix or below it on a segment boundary.
func underPrefix(p, prefix string) bool {
	return p == prefix || strings.HasPrefix(p, prefix) && (strings.HasSuffix(prefix, "/") || p[len(prefix)] == '/')
}

// rule returns the rule deciding method; ok is false when the route has
// rules and none applies.
func (rt *route) rule(method string) (Rule, bool) {
	if len(rt.Rules) == 0 {
		return Rule{}, true
	}
	for _, rule := range rt.Rules {
		if len(rule.Methods) == 0 || slices.Contains(rule.Methods, method) {
			return rule, true
		}
	}
	return Rule{}, false
}

// deny returns why the rule refuses p, or "" to admit.
func (rule Rule) deny(p *resource.Principal) string {
	if len(rule.Roles) > 0 && !slices.ContainsFunc(rule.Roles, p.HasRole) {
		return "missing role, need one of " + strings.Join(rule.Roles, ",")
	}
	for _, s := range rule.Scopes {
		if !p.HasScope(s) {
			return "missing scope " + s
		}
	}
	return ""
}

// errNoCredentials: the request carried no Authorization header.
var errNoCredentials = errors.New("gateway: no credentials")

// authenticate returns the caller and the access token to forward and,
// for Basic credentials, what a retry needs to make a new grant (retry.go).
func (g *Gateway) authenticate(r *http.Request) (*resource.Principal, string, *basicRequest, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		if st := sessionFrom(r.Context()); st != nil {
			p, token, err := g.sessions.authenticate(r, st)
			return p, token, nil, err
		}
		return nil, "", nil, errNoCredentials
	}
	if token, ok := resource.BearerToken(r); ok {
		p, err := g.verify.Verify(r.Context(), token)
		return p, token, nil, err
	}
	scheme, _, _ := strings.Cut(h, " ")
	if strings.EqualFold(scheme, "Basic") && g.basic != nil {
		user, pass, ok := r.BasicAuth()
		if !ok {
			return nil, "", nil, errMalformedCredentials
		}
		br := &basicRequest{user: user, pass: pass, endUserIP: endUserIP(r)}
		p, token, err := g.basic.authenticate(r.Context(), br.user, br.pass, br.endUserIP)
		return p, token, br, err
	}
	return nil, "", nil, errMalformedCredentials
}

// newVerifiers builds the verifiers of bearer tokens: the JWT verifier, and
// for opaque tokens an introspector with the phantom-token minter.
func (g *Gateway) newVerifiers(d *discovery) error {
	cfg := &g.cfg
	g.jwt = cfg.Verifier
	if g.jwt == nil {
		v, err := resource.NewVerifier(resource.Config{Issuer: cfg.Issuer, Audience: cfg.Audience,
			RolesClaim: cfg.RolesClaim, UsernameClaim: cfg.UsernameClaim, AccessTokenTypes: cfg.AccessTokenTypes,
			HTTPClient: cfg.HTTPClient, Now: cfg.Now, OnCacheLookup: g.metrics.cacheHook(cacheToken)})
		if err != nil {
			return fmt.Errorf("gateway: %w", err)
		}
		g.jwt = v
	}
	g.verify = g.jwt
	if o := cfg.Opaque; o != nil {
		in := &introspector{discovery: d, cfg: resource.IntrospectionConfig{
			IntrospectionURL: o.IntrospectionURL, ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret,
			Issuer: cfg.Issuer, Audience: cfg.Audience, CacheTTL: o.CacheTTL, CacheSize: o.CacheSize,
			RolesClaim: cfg.RolesClaim, UsernameClaim: cfg.UsernameClaim, HTTPClient: cfg.HTTPClient, Now: cfg.Now,
			OnCacheLookup: g.metrics.cacheHook(cacheIntrospection)}}
		g.verify = resource.Either{JWT: g.jwt, Opaque: in}
		ph, err := newPhantoms(o, cfg.Now, g.metrics.cacheHook(cachePhantom))
		if err != nil {
			return fmt.Errorf("gateway: %w", err)
		}
		g.phantom = ph
	}
	return nil
}

// isBearer reports whether h is exactly "Bearer " followed by token.
func isBearer(h, token string) bool {
	const scheme = "Bearer "
	return len(h) == len(scheme)+len(token) && h[:len(scheme)] == scheme && h[len(scheme):] == token
}

// newRoute builds the reverse proxy of r; limit is the gateway's rate
// limit, which r may replace with its own; clones are the transports with a
// response header timeout made so far (see routeTransport).
func (g *Gateway) newRoute(r Route, limit *limiter, clones map[transportKey]*http.Transport) *route {
	upstream, _ := url.Parse(r.Upstream) // validated
	transport := r.Transport
	if transport == nil {
		transport = g.cfg.Transport
	}
	timeout := r.Timeout
	if timeout == 0 {
		timeout = g.cfg.UpstreamTimeout
	}
	rt := &route{Route: r, name: r.label(), audience: g.cfg.Audience, limiter: limit}
	if r.Audience != "" {
		rt.audience = []string{r.Audience}
	}
	if r.RateLimit != nil {
		rt.limiter = newLimiter(*r.RateLimit, g.cfg.RateLimitKeys, g.cfg.Now)
	}
	rt.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			for name := range pr.Out.Header {
				if n := cgiName(name); g.strip[n] || hasIdentityPrefix(n) {
					delete(pr.Out.Header, name)
				}
			}
			stripSessionCookies(pr.Out.Header)
			pr.Out.URL.Path = strings.TrimPrefix(pr.In.URL.Path, r.StripPrefix)
			pr.Out.URL.RawPath = ""
			pr.SetURL(upstream)
			pr.SetXForwarded()
		},
		Transport:    routeTransport(transport, timeout, g.metrics.upstream.WithLabelValues(rt.name), clones),
		BufferPool:   proxyBuffers,
		ErrorHandler: g.proxyError(rt),
	}
	return rt
}

// identityHeaders returns the headers always stripped before forwarding:
// anything an upstream might take as the caller's identity, by cgiName.
func identityHeaders(extra []string) map[string]bool {
	h := []string{"X-User", "X-User-Id", "X-Username", "X-Email", "X-Roles", "X-Groups",
		"X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Groups", "X-Forwarded-Preferred-Username",
		"X-Forwarded-Access-Token", "X-Remote-User", "X-Remote-Group", "Remote-User", "X-Authenticated-User",
		"X-Client-Cert", "X-Client-Verify", "X-Ssl-Client-Cert", "X-Jwt-Assertion", "X-Userinfo", "X-Id-Token",
		"X-Access-Token", "Forwarded", "X-Real-Ip",
		// Removed by ReverseProxy and set again by SetXForwarded; listed so
		// that their underscore spellings go too.
		"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"}
	set := make(map[string]bool, len(h)+len(extra))
	for _, name := range append(h, extra...) {
		set[cgiName(name)] = true
	}
	return set
}

// cgiName is the name under which CGI-style servers (WSGI, Rack, PHP) see a
// header: they read X_User and X-User as the same HTTP_X_USER, so a header
// is matched with its underscores taken as hyphens.
func cgiName(name string) string {
	return http.CanonicalHeaderKey(strings.ReplaceAll(name, "_", "-"))
}

// hasIdentityPrefix reports header families reserved for identity.
func hasIdentityPrefix(name string) bool {
	return strings.HasPrefix(name, "X-Gatehouse-") || strings.HasPrefix(name, "X-Auth-") ||
		strings.HasPrefix(name, "X-Authenticated-") || strings.HasPrefix(name, "X-Forwarded-User")
}
