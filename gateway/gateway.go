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
	cfg    Config
	routes []*route
	verify resource.TokenVerifier
	basic  *basicAuth      // nil when no client credentials are configured
	strip  map[string]bool // identity headers, by cgiName

	sessions *sessions // nil when browser sessions are off
}

// route is a Route with its proxy built.
type route struct {
	Route
	proxy *httputil.ReverseProxy
}

// New returns a Gateway for cfg. It does no I/O: discovery and the JWKS are
// fetched on first use.
func New(cfg Config) (*Gateway, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	g := &Gateway{cfg: cfg, verify: cfg.Verifier, strip: identityHeaders(cfg.StripHeaders)}
	if g.verify == nil {
		v, err := resource.NewVerifier(resource.Config{Issuer: cfg.Issuer, Audience: cfg.Audience, HTTPClient: cfg.HTTPClient, Now: cfg.Now})
		if err != nil {
			return nil, fmt.Errorf("gateway: %w", err)
		}
		g.verify = v
	}
	if cfg.Revocations != nil {
		g.verify = resource.WithRevocations(g.verify, cfg.Revocations)
	}
	if cfg.ClientID != "" {
		g.basic = newBasicAuth(&cfg, g.verify)
	}
	for _, r := range cfg.Routes {
		g.routes = append(g.routes, g.newRoute(r))
	}
	if cfg.Session.Enabled {
		g.sessions = newSessions(&cfg, g.verify, g.basic)
		for _, rt := range g.routes {
			rt.proxy.Transport = &retryTransport{next: rt.proxy.Transport, s: g.sessions}
		}
	}
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
	rt := g.match(r)
	if rt == nil {
		writeError(w, &oauth.Error{Code: "not_found", Description: "no route", Status: http.StatusNotFound})
		return
	}
	rule, ok := rt.rule(r.Method)
	if !ok {
		g.deny(w, r, "no rule for this method")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, g.cfg.MaxBodyBytes)
	if rule.Public {
		r.Header.Del("Authorization")
		rt.proxy.ServeHTTP(w, r)
		return
	}
	p, token, err := g.authenticate(r)
	if err != nil {
		g.unauthorized(w, r, err)
		return
	}
	if reason := rule.deny(p); reason != "" {
		g.deny(w, r, reason)
		return
	}
	if !isBearer(r.Header.Get("Authorization"), token) { // Basic, or "bearer" spelled otherwise
		r.Header.Set("Authorization", "Bearer "+token)
	}
	rt.proxy.ServeHTTP(w, r)
}

// match returns the first route whose prefix matches the request path, or
// nil. Paths that are not clean, or that encode a slash, match nothing: they
// could otherwise reach an upstream path another route's rules protect.
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
	for _, rt := range g.routes {
		if p == rt.Prefix || strings.HasPrefix(p, rt.Prefix) && (strings.HasSuffix(rt.Prefix, "/") || p[len(rt.Prefix)] == '/') {
			return rt
		}
	}
	return nil
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

// authenticate returns the caller and the access token to forward.
func (g *Gateway) authenticate(r *http.Request) (*resource.Principal, string, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		if st := sessionFrom(r.Context()); st != nil {
			return g.sessions.authenticate(r, st)
		}
		return nil, "", errNoCredentials
	}
	if token, ok := resource.BearerToken(r); ok {
		p, err := g.verify.Verify(r.Context(), token)
		return p, token, err
	}
	scheme, _, _ := strings.Cut(h, " ")
	if strings.EqualFold(scheme, "Basic") && g.basic != nil {
		user, pass, ok := r.BasicAuth()
		if !ok {
			return nil, "", errMalformedCredentials
		}
		return g.basic.authenticate(r.Context(), user, pass, endUserIP(r))
	}
	return nil, "", errMalformedCredentials
}

// isBearer reports whether h is exactly "Bearer " followed by token.
func isBearer(h, token string) bool {
	const scheme = "Bearer "
	return len(h) == len(scheme)+len(token) && h[:len(scheme)] == scheme && h[len(scheme):] == token
}

// newRoute builds the reverse proxy of r.
func (g *Gateway) newRoute(r Route) *route {
	upstream, _ := url.Parse(r.Upstream) // validated in setDefaults
	transport := r.Transport
	if transport == nil {
		transport = g.cfg.Transport
	}
	rt := &route{Route: r}
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
		Transport: transport,
		ErrorHandler: func(w http.ResponseWriter, req *http.Request, err error) {
			status, code := http.StatusBadGateway, "bad_gateway"
			if errors.Is(err, context.DeadlineExceeded) {
				status, code = http.StatusGatewayTimeout, "gateway_timeout"
			}
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				status, code = http.StatusRequestEntityTooLarge, "request_too_large"
			}
			g.cfg.Logger.WarnContext(req.Context(), "upstream failed", "route", r.Prefix, "err", err)
			writeError(w, &oauth.Error{Code: code, Description: "upstream request failed", Status: status})
		},
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
