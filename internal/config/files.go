package config

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/gatehouse-dev/gatehouse/gateway"
	"github.com/gatehouse-dev/gatehouse/pki"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// AuthServer is the file given to `gatehouse authserver --config`.
type AuthServer struct {
	// Issuer identifier, e.g. https://auth.example.com. Required.
	Issuer string `yaml:"issuer"`
	// Listen address; default 127.0.0.1:9000.
	Listen string `yaml:"listen"`
	// Store: sqlite:PATH or postgres:DSN. Required.
	Store string `yaml:"store"`
	// MasterKeyFile holds the base64 master key; if empty, the environment
	// variable GATEHOUSE_MASTER_KEY must hold it.
	MasterKeyFile string `yaml:"master_key_file"`
	// Seed file applied at start (optional).
	Seed string `yaml:"seed"`
	// Audience of access tokens for clients registered without one; default
	// the issuer.
	Audience           []string       `yaml:"audience"`
	AccessTokenTTL     time.Duration  `yaml:"access_token_ttl"`     // default 5m
	RefreshTokenTTL    time.Duration  `yaml:"refresh_token_ttl"`    // idle; default 24h
	RefreshAbsoluteTTL time.Duration  `yaml:"refresh_absolute_ttl"` // default 720h
	RefreshGrace       *time.Duration `yaml:"refresh_grace"`        // default 10s; 0s turns it off
	SigningAlgorithm   string         `yaml:"signing_algorithm"`    // ES256 (default), RS256, EdDSA
	SessionTTL         time.Duration  `yaml:"session_ttl"`          // login at the server's own pages; default 12h

	// AdminListen is the admin API's and /metrics' address; default
	// 127.0.0.1:9001 (loopback: reach it from the host or an internal network only).
	AdminListen string `yaml:"admin_listen"`
	// AdminTokenFile holds the admin API's bearer token; if empty, the
	// environment variable GATEHOUSE_ADMIN_TOKEN. Without either, the admin
	// API refuses every request (/metrics still answers).
	AdminTokenFile string `yaml:"admin_token_file"`
	// KeyPublishDelay: a rotated signing key is published this long before
	// it signs; default 10m.
	KeyPublishDelay time.Duration `yaml:"key_publish_delay"`
	// KeyReloadInterval: how often the server rereads the signing keys;
	// default 30s.
	KeyReloadInterval time.Duration `yaml:"key_reload_interval"`
	// GCInterval: how often expired records are deleted; default 10m.
	GCInterval time.Duration `yaml:"gc_interval"`
	// EventRetention: how long events are kept (at least the longest
	// access-token lifetime); default 24h.
	EventRetention time.Duration `yaml:"event_retention"`
	// SSFPushPauseAfter: a push stream whose deliveries fail this long
	// without a success is paused; default 10m, negative: never.
	SSFPushPauseAfter time.Duration `yaml:"ssf_push_pause_after"`
	// LoginThrottle: failed-login throttling.
	LoginThrottle LoginThrottle `yaml:"login_throttle"`

	// AdminToken is read from AdminTokenFile or the environment by
	// LoadAuthServer.
	AdminToken string `yaml:"-"`
	// CADir is the folder of the built-in CA (DATA/ca after `gatehouse ca
	// init --data DATA`), sealed with the same master key. If set, the
	// server issues service certificates (docs/mtls.md); if empty, it does not.
	CADir string `yaml:"ca_dir"`
	// MTLS, if set, serves the RFC 8705 mutual-TLS endpoints on a second
	// listener (authserver_mtls.go).
	MTLS *AuthServerMTLS `yaml:"mtls"`
}

// LoginThrottle is the login_throttle block of the authorization server
// file; see authserver.LoginThrottle. Zero values take the defaults.
type LoginThrottle struct {
	Failures int           `yaml:"failures"` // failures before the first lock; default 5
	Window   time.Duration `yaml:"window"`   // a failure-free window resets the count; default 1h
	Lock     time.Duration `yaml:"lock"`     // first lock, doubled per further failure; default 1s
	MaxLock  time.Duration `yaml:"max_lock"` // longest lock; default 15m
}

// EnvAdminToken holds the admin token when no admin_token_file is named.
const EnvAdminToken = "GATEHOUSE_ADMIN_TOKEN"

// LoadAuthServer reads and checks an authorization server file.
func LoadAuthServer(path string) (*AuthServer, error) {
	var c AuthServer
	if err := load(path, &c); err != nil {
		return nil, fmt.Errorf("authserver config: %w", err)
	}
	var errs []error
	if c.Issuer == "" {
		errs = append(errs, errors.New("issuer is required"))
	}
	if c.Store == "" {
		errs = append(errs, errors.New("store is required (sqlite:PATH or postgres:DSN)"))
	}
	if c.Listen == "" {
		c.Listen = "127.0.0.1:9000"
	}
	if c.AdminListen == "" {
		c.AdminListen = "127.0.0.1:9001"
	}
	if c.AdminTokenFile != "" {
		tok, err := readSecret(c.AdminTokenFile, EnvAdminToken)
		if err != nil {
			errs = append(errs, fmt.Errorf("admin_token_file: %w", err))
		}
		c.AdminToken = tok
	} else {
		c.AdminToken = os.Getenv(EnvAdminToken)
	}
	if c.AdminToken != "" && len(c.AdminToken) < 16 {
		errs = append(errs, errors.New("the admin token is shorter than 16 characters"))
	}
	if c.MTLS != nil {
		errs = append(errs, c.MTLS.check(c.CADir))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("authserver config %s: %w", path, err)
	}
	return &c, nil
}

// Grace converts RefreshGrace to authserver.Config's convention (zero:
// default, negative: off).
func (c *AuthServer) Grace() time.Duration {
	switch {
	case c.RefreshGrace == nil:
		return 0
	case *c.RefreshGrace == 0:
		return -1
	default:
		return *c.RefreshGrace
	}
}

// Gateway is the file given to `gatehouse gateway --config`. See
// docs/gateway.md for every key.
type Gateway struct {
	// Listen address; default 127.0.0.1:8080.
	Listen string `yaml:"listen"`
	// AdminListen, if set, serves /metrics, /healthz and /readyz on an
	// address of its own (never on Listen).
	AdminListen string `yaml:"admin_listen"`
	// Issuer of the authorization server. Required.
	Issuer string `yaml:"issuer"`
	// Audience values accepted in access tokens. Required.
	Audience []string `yaml:"audience"`
	// TokenURL; default from discovery.
	TokenURL string `yaml:"token_url"`
	// RevocationURL (RFC 7009), where logout revokes refresh tokens;
	// default from discovery.
	RevocationURL string `yaml:"revocation_url"`
	// ClientID and the secret of the gateway's confidential client; the
	// secret from ClientSecretFile, or the environment variable
	// GATEHOUSE_GATEWAY_CLIENT_SECRET.
	ClientID                string        `yaml:"client_id"`
	ClientSecretFile        string        `yaml:"client_secret_file"`
	TokenEndpointAuthMethod string        `yaml:"token_endpoint_auth_method"` // client_secret_basic (default) or client_secret_post
	RolesClaim              string        `yaml:"roles_claim"`                // default "roles"
	UsernameClaim           string        `yaml:"username_claim"`             // default "preferred_username"
	AccessTokenTypes        []string      `yaml:"access_token_types"`         // default [at+jwt]
	StripHeaders            []string      `yaml:"strip_headers"`
	MaxBodyBytes            int64         `yaml:"max_body_bytes"`
	UpstreamTimeout         time.Duration `yaml:"upstream_timeout"` // default 60s
	// UpstreamCAFile holds PEM certificates trusted for https upstreams
	// instead of the system's roots.
	UpstreamCAFile string        `yaml:"upstream_ca_file"`
	AccessLog      *bool         `yaml:"access_log"` // default true
	RateLimit      *RateLimit    `yaml:"rate_limit"`
	RateLimitKeys  int           `yaml:"rate_limit_keys"`
	OpaqueTokens   *OpaqueTokens `yaml:"opaque_tokens"`
	Routes         []Route       `yaml:"routes"`
	// Revocations, if set, makes the gateway follow the authorization
	// server's Shared Signals stream (revocations.go).
	Revocations *Revocations `yaml:"revocations"`
	// MTLS is the gateway's own service identity for mutual TLS to
	// upstreams (docs/mtls.md); routes name the SPIFFE ID they expect.
	MTLS *MTLS `yaml:"mtls"`
	// Session configures browser sessions (docs/sessions.md).
	Session Session `yaml:"session"`
}

// RateLimit is a rate limit of the gateway file.
type RateLimit struct {
	Rate  float64 `yaml:"rate"`  // requests per second per identity; 0: no limit
	Burst int     `yaml:"burst"` // default: rate rounded up
}

// OpaqueTokens turns on opaque bearer tokens and phantom tokens.
type OpaqueTokens struct {
	IntrospectionURL string        `yaml:"introspection_url"` // default from discovery
	CacheTTL         time.Duration `yaml:"cache_ttl"`         // default 30s
	CacheSize        int           `yaml:"cache_size"`        // default 10000
	PhantomIssuer    string        `yaml:"phantom_issuer"`    // required
	PhantomTTL       time.Duration `yaml:"phantom_ttl"`       // default and most 60s
	// SigningKeyFile holds the phantom-token signing key as PEM (PKCS #8,
	// or SEC 1 for EC keys); default a key generated at start.
	SigningKeyFile string `yaml:"signing_key_file"`
	JWKSPath       string `yaml:"jwks_path"` // default /.well-known/gatehouse-gateway/jwks.json
}

// Session is the session block of the gateway file; see
// gateway.SessionConfig for each field's meaning and default.
type Session struct {
	Enabled            bool          `yaml:"enabled"`
	LoginPath          string        `yaml:"login_path"`
	LogoutPath         string        `yaml:"logout_path"`
	SameSite           string        `yaml:"same_site"` // lax (default) or strict
	PublicURL          string        `yaml:"public_url"`
	RefreshBefore      time.Duration `yaml:"refresh_before"`
	ReuseWindow        time.Duration `yaml:"reuse_window"`
	RetryBodyBytes     int64         `yaml:"retry_body_bytes"`
	InsecureDevCookies bool          `yaml:"insecure_dev_cookies"`
}

// config converts the block to gateway.SessionConfig.
func (s Session) config() (gateway.SessionConfig, error) {
	sc := gateway.SessionConfig{Enabled: s.Enabled, LoginPath: s.LoginPath, LogoutPath: s.LogoutPath,
		PublicURL: s.PublicURL, RefreshBefore: s.RefreshBefore, ReuseWindow: s.ReuseWindow,
		RetryBodyBytes: s.RetryBodyBytes, InsecureDevCookies: s.InsecureDevCookies}
	switch strings.ToLower(s.SameSite) {
	case "", "lax":
		sc.SameSite = http.SameSiteLaxMode
	case "strict":
		sc.SameSite = http.SameSiteStrictMode
	default:
		return sc, fmt.Errorf("session: same_site %q: want lax or strict", s.SameSite)
	}
	return sc, nil
}

// Route is a route of the gateway file.
type Route struct {
	// SPIFFEID is the ID the upstream must present over mTLS (with mtls set).
	SPIFFEID    string        `yaml:"spiffe_id"`
	Name        string        `yaml:"name"`
	Prefix      string        `yaml:"prefix"`
	Pattern     string        `yaml:"pattern"`
	Upstream    string        `yaml:"upstream"`
	StripPrefix string        `yaml:"strip_prefix"`
	Audience    string        `yaml:"audience"`
	Timeout     time.Duration `yaml:"timeout"`
	RateLimit   *RateLimit    `yaml:"rate_limit"`
	Rules       []Rule        `yaml:"rules"`
}

// Rule is a route rule of the gateway file.
type Rule struct {
	Methods []string `yaml:"methods"`
	Public  bool     `yaml:"public"`
	Roles   []string `yaml:"roles"`
	Scopes  []string `yaml:"scopes"`
}

// EnvGatewaySecret holds the gateway's client secret when no file is named.
const EnvGatewaySecret = "GATEHOUSE_GATEWAY_CLIENT_SECRET"

// AccessLogOn reports whether the file asks for an access log (the default).
func (c *Gateway) AccessLogOn() bool { return c.AccessLog == nil || *c.AccessLog }

// LoadGateway reads a gateway file, converts it to a gateway.Config and
// validates that: every problem is reported at once, each with the line of
// the route or rule at fault.
func LoadGateway(path string) (*Gateway, gateway.Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, gateway.Config{}, fmt.Errorf("gateway config: %w", err)
	}
	var c Gateway
	if err := decodeStrict(data, &c); err != nil {
		return nil, gateway.Config{}, fmt.Errorf("gateway config: %s: %w", path, err)
	}
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8080"
	}
	if c.Revocations != nil {
		if err := c.Revocations.resolve(c.AdminListen); err != nil {
			return nil, gateway.Config{}, fmt.Errorf("gateway config %s: %w", path, err)
		}
	}
	gc, err := c.convert()
	if err != nil {
		return nil, gateway.Config{}, fmt.Errorf("gateway config %s: %w", path, err)
	}
	if err := gc.Validate(); err != nil {
		return nil, gateway.Config{}, fmt.Errorf("gateway config %s: %w", path, withLines(err, data))
	}
	return &c, gc, nil
}

// convert builds the gateway.Config, reading the files the gateway file
// names.
func (c *Gateway) convert() (gateway.Config, error) {
	gc := gateway.Config{Issuer: c.Issuer, Audience: c.Audience, TokenURL: c.TokenURL, ClientID: c.ClientID,
		TokenEndpointAuthMethod: c.TokenEndpointAuthMethod, RolesClaim: c.RolesClaim, UsernameClaim: c.UsernameClaim,
		AccessTokenTypes: c.AccessTokenTypes, StripHeaders: c.StripHeaders, MaxBodyBytes: c.MaxBodyBytes,
		UpstreamTimeout: c.UpstreamTimeout, RateLimitKeys: c.RateLimitKeys, RevocationURL: c.RevocationURL}
	sc, err := c.Session.config()
	if err != nil {
		return gc, err
	}
	gc.Session = sc
	if c.ClientID != "" {
		secret, err := readSecret(c.ClientSecretFile, EnvGatewaySecret)
		if err != nil {
			return gc, fmt.Errorf("client secret: %w", err)
		}
		gc.ClientSecret = secret
	}
	if c.RateLimit != nil {
		gc.RateLimit = gateway.RateLimit(*c.RateLimit)
	}
	if c.UpstreamCAFile != "" {
		t, err := upstreamTransport(c.UpstreamCAFile)
		if err != nil {
			return gc, err
		}
		gc.Transport = t
	}
	if o := c.OpaqueTokens; o != nil {
		gc.Opaque = &gateway.Opaque{IntrospectionURL: o.IntrospectionURL, CacheTTL: o.CacheTTL, CacheSize: o.CacheSize,
			Issuer: o.PhantomIssuer, TTL: o.PhantomTTL, JWKSPath: o.JWKSPath}
		if o.SigningKeyFile != "" {
			key, err := readSigningKey(o.SigningKeyFile)
			if err != nil {
				return gc, err
			}
			gc.Opaque.SigningKey = key
		}
	}
	var svid *pki.FileSource
	if m := c.MTLS; m != nil {
		if svid, err = m.source(); err != nil {
			return gc, err
		}
	}
	for _, r := range c.Routes {
		rt := gateway.Route{Name: r.Name, Prefix: r.Prefix, Pattern: r.Pattern, Upstream: r.Upstream,
			StripPrefix: r.StripPrefix, Audience: r.Audience, Timeout: r.Timeout}
		t, err := mtlsTransport(svid, r)
		if err != nil {
			return gc, err
		}
		if t != nil {
			rt.Transport = t
		}
		if r.RateLimit != nil {
			rt.RateLimit = &gateway.RateLimit{Rate: r.RateLimit.Rate, Burst: r.RateLimit.Burst}
		}
		for _, rule := range r.Rules {
			rt.Rules = append(rt.Rules, gateway.Rule(rule))
		}
		gc.Routes = append(gc.Routes, rt)
	}
	return gc, nil
}

// MTLS is the mtls block of the gateway file: the gateway's certificate,
// key and trust bundle as PEM files, as `gatehouse ca issue` writes them.
// They are read at start and on every reload (SIGHUP), and re-read when
// they change (pki.FileSource), so renewing them needs no signal.
type MTLS struct {
	CertFile   string `yaml:"cert_file"`
	KeyFile    string `yaml:"key_file"`
	BundleFile string `yaml:"bundle_file"`
}

// mtlsTransport is the route's transport when the gateway speaks mTLS:
// its own certificate, and exactly the route's SPIFFE ID expected of the
// upstream. nil when the route needs none.
func mtlsTransport(svid *pki.FileSource, r Route) (*http.Transport, error) {
	switch {
	case svid == nil && r.SPIFFEID != "":
		return nil, fmt.Errorf("route %s: spiffe_id needs the mtls block", r.Upstream)
	case svid == nil:
		return nil, nil
	case r.SPIFFEID == "" && strings.HasPrefix(r.Upstream, "https:"):
		return nil, fmt.Errorf("route %s: with mtls, an https upstream needs spiffe_id", r.Upstream)
	case r.SPIFFEID == "":
		return nil, nil
	}
	id, err := spiffeid.FromString(r.SPIFFEID)
	if err != nil {
		return nil, fmt.Errorf("route %s: spiffe_id: %w", r.Upstream, err)
	}
	return UpstreamTransport(svid, id), nil
}

// upstreamTransport is gateway.NewTransport trusting the CA certificates in
// file for https upstreams.
func upstreamTransport(file string) (*http.Transport, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("upstream_ca_file: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("upstream_ca_file %s: no PEM certificate", file)
	}
	t := gateway.NewTransport()
	t.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	return t, nil
}

// readSigningKey reads a PEM private key: PKCS #8 ("PRIVATE KEY"), or SEC 1
// ("EC PRIVATE KEY").
func readSigningKey(file string) (crypto.Signer, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("signing_key_file: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("signing_key_file %s: no PEM block", file)
	}
	var key any
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("signing_key_file %s: PEM type %q, want PRIVATE KEY or EC PRIVATE KEY", file, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("signing_key_file %s: %w", file, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("signing_key_file %s: %T cannot sign", file, key)
	}
	return signer, nil
}

// withLines prefixes each *gateway.RouteError joined in err with the line of
// its route (or rule) in the YAML data.
func withLines(err error, data []byte) error {
	routes, rules := routeLines(data)
	var out []error
	for _, e := range flatten(err) {
		if re, ok := errors.AsType[*gateway.RouteError](e); ok && re.Route >= 1 && re.Route <= len(routes) {
			line := routes[re.Route-1]
			if r := rules[re.Route-1]; re.Rule >= 1 && re.Rule <= len(r) {
				line = r[re.Rule-1]
			}
			e = fmt.Errorf("line %d: %w", line, e)
		}
		out = append(out, e)
	}
	return errors.Join(out...)
}

// flatten returns the errors joined in err, looking through single wraps.
func flatten(err error) []error {
	for {
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			return u.Unwrap()
		case interface{ Unwrap() error }:
			if _, ok := err.(*gateway.RouteError); ok {
				return []error{err}
			}
			err = u.Unwrap()
		default:
			return []error{err}
		}
	}
}

// routeLines returns the line of each item of the top-level "routes"
// sequence, and of each item of its "rules".
func routeLines(data []byte) (routes []int, rules [][]int) {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 {
		return nil, nil
	}
	seq := mappingValue(doc.Content[0], "routes")
	if seq == nil {
		return nil, nil
	}
	for _, item := range seq.Content {
		routes = append(routes, item.Line)
		var ruleLines []int
		if rs := mappingValue(item, "rules"); rs != nil {
			for _, r := range rs.Content {
				ruleLines = append(ruleLines, r.Line)
			}
		}
		rules = append(rules, ruleLines)
	}
	return routes, rules
}

// mappingValue returns the value of key in a YAML mapping node, or nil.
func mappingValue(n *yaml.Node, key string) *yaml.Node {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// readSecret reads a secret from file, or else from the environment.
func readSecret(file, env string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", err
		}
		return strings.TrimSpace(string(b)), nil
	}
	if v := os.Getenv(env); v != "" {
		return v, nil
	}
	return "", fmt.Errorf("set client_secret_file or %s", env)
}
