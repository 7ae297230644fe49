package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/resource"
)

// Config configures a Gateway. Issuer, Audience and Routes are required;
// ClientID and ClientSecret are required for Basic credentials to work.
type Config struct {
	// Issuer of the authorization server whose tokens the gateway accepts.
	Issuer string
	// Audience lists accepted "aud" values of incoming access tokens.
	Audience []string
	// ClientID and ClientSecret are the gateway's own confidential client,
	// used for password grants on behalf of Basic clients.
	ClientID     string
	ClientSecret string
	// TokenURL of the authorization server; if empty, read from discovery.
	TokenURL string
	// RevocationURL of the authorization server (RFC 7009), where logout
	// revokes the session's refresh token; if empty, revocation_endpoint
	// from discovery.
	RevocationURL string
	// Session configures browser sessions; off unless Session.Enabled.
	Session SessionConfig
	// Routes are matched in order; the first match wins.
	Routes []Route
	// Verifier checks bearer tokens; if nil, a resource.Verifier for Issuer
	// and Audience.
	Verifier resource.TokenVerifier
	// Revocations, if set, refuses revoked tokens (package ssf's Receiver
	// implements it): it is checked after every verification, cache hits
	// included, and before every use of a Basic-credential cache entry.
	Revocations resource.Revocations
	// Transport carries requests to the upstreams; if nil, NewTransport().
	Transport http.RoundTripper
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
	// Logger; if nil, slog.Default().
	Logger *slog.Logger
	// Now is the clock; if nil, time.Now.
	Now func() time.Time
}

// Route sends requests under a path prefix to one upstream.
type Route struct {
	// Prefix matches the path equal to it or below it on a segment boundary:
	// "/api/orders" matches "/api/orders" and "/api/orders/7", not
	// "/api/ordersX".
	Prefix string
	// Upstream is the base URL requests are forwarded to.
	Upstream string
	// StripPrefix is removed from the path before forwarding; it must be a
	// prefix of Prefix.
	StripPrefix string
	// Rules are checked in order; the first whose Methods include the
	// request's method decides. A route without rules admits every
	// authenticated caller; a route with rules denies a method none names.
	Rules []Rule
	// Transport for this upstream; if nil, Config.Transport.
	Transport http.RoundTripper
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

func (c *Config) setDefaults() error {
	var errs []error
	if c.Issuer == "" {
		errs = append(errs, errors.New("issuer is required"))
	}
	if len(c.Audience) == 0 && c.Verifier == nil {
		errs = append(errs, errors.New("audience is required"))
	}
	if len(c.Routes) == 0 {
		errs = append(errs, errors.New("at least one route is required"))
	}
	if (c.ClientID == "") != (c.ClientSecret == "") {
		errs = append(errs, errors.New("client_id and client_secret go together"))
	}
	for i, r := range c.Routes {
		if err := r.validate(); err != nil {
			errs = append(errs, fmt.Errorf("route %d (%s): %w", i+1, r.Prefix, err))
		}
	}
	if err := c.Session.setDefaults(c); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("gateway config: %w", err)
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if c.Transport == nil {
		c.Transport = NewTransport()
	}
	if c.BasicCacheSize == 0 {
		c.BasicCacheSize = 10000
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 10 << 20
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

var methods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
	http.MethodPatch, http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace}

func (r Route) validate() error {
	if !strings.HasPrefix(r.Prefix, "/") || strings.Contains(r.Prefix, "..") || strings.Contains(r.Prefix, "//") {
		return fmt.Errorf("prefix %q must be an absolute, clean path", r.Prefix)
	}
	u, err := url.Parse(r.Upstream)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("upstream %q must be an http or https URL", r.Upstream)
	}
	if r.StripPrefix != "" && !strings.HasPrefix(r.Prefix, r.StripPrefix) {
		return fmt.Errorf("strip_prefix %q is not a prefix of %q", r.StripPrefix, r.Prefix)
	}
	for j, rule := range r.Rules {
		for _, m := range rule.Methods {
			if !slices.Contains(methods, m) {
				return fmt.Errorf("rule %d: unknown method %q", j+1, m)
			}
		}
		if rule.Public && (len(rule.Roles) > 0 || len(rule.Scopes) > 0) {
			return fmt.Errorf("rule %d: a public rule cannot require roles or scopes", j+1)
		}
	}
	return nil
}

// NewTransport returns the upstream transport the gateway uses by default:
// many keep-alive connections per upstream, bounded dial and header waits.
func NewTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 256
	t.IdleConnTimeout = 90 * time.Second
	t.ResponseHeaderTimeout = 60 * time.Second
	t.ForceAttemptHTTP2 = true
	return t
}
