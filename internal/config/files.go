package config

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/gateway"
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
	// LoginThrottle: failed-login throttling.
	LoginThrottle LoginThrottle `yaml:"login_throttle"`

	// AdminToken is read from AdminTokenFile or the environment by
	// LoadAuthServer.
	AdminToken string `yaml:"-"`
	// CADir is the folder of the built-in CA (DATA/ca after `gatehouse ca
	// init --data DATA`), sealed with the same master key. If set, the
	// server issues service certificates (docs/mtls.md); if empty, it does not.
	CADir string `yaml:"ca_dir"`
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

// Gateway is the file given to `gatehouse gateway --config`.
type Gateway struct {
	// Listen address; default 127.0.0.1:8080.
	Listen string `yaml:"listen"`
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
	ClientID         string   `yaml:"client_id"`
	ClientSecretFile string   `yaml:"client_secret_file"`
	StripHeaders     []string `yaml:"strip_headers"`
	MaxBodyBytes     int64    `yaml:"max_body_bytes"`
	Routes           []Route  `yaml:"routes"`
	// Session configures browser sessions (docs/sessions.md).
	Session Session `yaml:"session"`
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
	Prefix      string `yaml:"prefix"`
	Upstream    string `yaml:"upstream"`
	StripPrefix string `yaml:"strip_prefix"`
	Rules       []Rule `yaml:"rules"`
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

// LoadGateway reads a gateway file and converts it to a gateway.Config
// (whose own validation runs in gateway.New).
func LoadGateway(path string) (*Gateway, gateway.Config, error) {
	var c Gateway
	if err := load(path, &c); err != nil {
		return nil, gateway.Config{}, fmt.Errorf("gateway config: %w", err)
	}
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8080"
	}
	gc := gateway.Config{Issuer: c.Issuer, Audience: c.Audience, TokenURL: c.TokenURL, RevocationURL: c.RevocationURL,
		ClientID: c.ClientID, StripHeaders: c.StripHeaders, MaxBodyBytes: c.MaxBodyBytes}
	sc, err := c.Session.config()
	if err != nil {
		return nil, gateway.Config{}, fmt.Errorf("gateway config %s: %w", path, err)
	}
	gc.Session = sc
	if c.ClientID != "" {
		secret, err := readSecret(c.ClientSecretFile, EnvGatewaySecret)
		if err != nil {
			return nil, gateway.Config{}, fmt.Errorf("gateway config %s: client secret: %w", path, err)
		}
		gc.ClientSecret = secret
	}
	for _, r := range c.Routes {
		rt := gateway.Route{Prefix: r.Prefix, Upstream: r.Upstream, StripPrefix: r.StripPrefix}
		for _, rule := range r.Rules {
			rt.Rules = append(rt.Rules, gateway.Rule(rule))
		}
		gc.Routes = append(gc.Routes, rt)
	}
	return &c, gc, nil
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
