package authserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/ca"
	"github.com/gatehouse-dev/gatehouse/internal/jose"
	"github.com/gatehouse-dev/gatehouse/internal/keyring"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/internal/password"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Config configures a Server. Issuer, Store and Keyring are required; every
// other field has a secure default when left zero.
type Config struct {
	// Issuer is the server's issuer identifier (RFC 8414 §2): an https URL,
	// or http on a loopback address for development. Endpoints are served
	// below its path.
	Issuer string
	// Store keeps users, clients, refresh tokens and signing keys.
	Store store.Store
	// Keyring seals private keys and keys the hashes of secrets.
	Keyring *keyring.Keyring

	// Audience of access tokens for clients registered without one. If
	// empty, the issuer.
	Audience []string
	// AccessTokenTTL is the lifetime of access tokens. If zero, 5m.
	AccessTokenTTL time.Duration
	// RefreshTokenTTL is how long a refresh token may go unused. If zero, 24h.
	RefreshTokenTTL time.Duration
	// RefreshAbsoluteTTL bounds a refresh-token family from the login. If
	// zero, 720h (30 days).
	RefreshAbsoluteTTL time.Duration
	// RefreshGrace is how long after a rotation a retry with the old refresh
	// token gets the same successor instead of counting as reuse. If zero,
	// 10s; a negative value turns the grace window off.
	RefreshGrace time.Duration
	// SigningAlgorithm for new keys: ES256, RS256 or EdDSA. If empty, ES256.
	SigningAlgorithm string
	// PasswordParams for argon2id. If zero, password.Default.
	PasswordParams password.Params
	// MaxHashConcurrency bounds password hashes computed at once (each takes
	// PasswordParams.Memory). If zero, 4.
	MaxHashConcurrency int
	// MaxBodyBytes bounds request bodies. If zero, 64 KiB.
	MaxBodyBytes int64

	// CA, if set, issues service certificates at the issuance endpoint
	// (POST /pki/v1/issue, announced in discovery) to clients presenting
	// their own client_credentials token. If nil, there is no endpoint.
	CA *ca.CA

	// Logger receives audit events and errors. If nil, slog.Default().
	Logger *slog.Logger
	// Now is the clock. If nil, time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() error {
	if c.Issuer == "" || c.Store == nil || c.Keyring == nil {
		return errors.New("authserver: Config needs Issuer, Store and Keyring")
	}
	u, err := url.Parse(c.Issuer)
	if err != nil || !u.IsAbs() || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("authserver: issuer %q must be an absolute URL without query or fragment", c.Issuer)
	}
	c.Issuer = strings.TrimSuffix(c.Issuer, "/")
	if len(c.Audience) == 0 {
		c.Audience = []string{c.Issuer}
	}
	setDuration(&c.AccessTokenTTL, 5*time.Minute)
	setDuration(&c.RefreshTokenTTL, 24*time.Hour)
	setDuration(&c.RefreshAbsoluteTTL, 30*24*time.Hour)
	setDuration(&c.RefreshGrace, 10*time.Second)
	if c.RefreshGrace < 0 {
		c.RefreshGrace = 0
	}
	if c.SigningAlgorithm == "" {
		c.SigningAlgorithm = jose.ES256
	}
	if c.PasswordParams == (password.Params{}) {
		c.PasswordParams = password.Default
	}
	if c.MaxHashConcurrency <= 0 {
		c.MaxHashConcurrency = 4
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 64 << 10
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

func setDuration(d *time.Duration, def time.Duration) {
	if *d == 0 {
		*d = def
	}
}

// Server is the authorization server. It is an http.Handler and is safe for
// concurrent use.
type Server struct {
	cfg     Config
	mux     *http.ServeMux
	keys    *signingKeys
	grants  map[string]grant
	hashSem chan struct{}

	refreshHasher   *keyring.Hasher
	successorHasher *keyring.Hasher
	secretHasher    *keyring.Hasher
}

// Endpoint paths below the issuer. Clients must find them by discovery.
const (
	pathToken = "/oauth2/token"
	pathJWKS  = "/oauth2/jwks"
)

// New returns a Server for cfg. It loads the signing keys from the store and
// creates the first one if there is none.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:             cfg,
		mux:             http.NewServeMux(),
		hashSem:         make(chan struct{}, cfg.MaxHashConcurrency),
		refreshHasher:   cfg.Keyring.Hasher(keyring.PurposeRefreshToken),
		successorHasher: cfg.Keyring.Hasher(keyring.PurposeSuccessor),
		secretHasher:    cfg.Keyring.Hasher(keyring.PurposeClientSecret),
	}
	keys, err := loadSigningKeys(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s.keys = keys
	s.grants = map[string]grant{
		oauth.GrantPassword:          s.passwordGrant,
		oauth.GrantClientCredentials: s.clientCredentialsGrant,
		oauth.GrantRefreshToken:      s.refreshGrant,
	}
	prefix := issuerPath(cfg.Issuer)
	// RFC 8414 §3 inserts the well-known segment before the issuer's path;
	// OIDC Discovery §4 appends it. Both are served; they coincide for an
	// issuer without a path.
	for _, wk := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"} {
		s.mux.HandleFunc("GET "+wk+prefix, s.handleDiscovery)
		if prefix != "" {
			s.mux.HandleFunc("GET "+prefix+wk, s.handleDiscovery)
		}
	}
	s.mux.HandleFunc("GET "+prefix+pathJWKS, s.handleJWKS)
	s.mux.HandleFunc(prefix+pathToken, s.handleToken)
	s.registerPKI(prefix)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	return s, nil
}

// issuerPath returns the issuer URL's path without a trailing slash.
func issuerPath(issuer string) string {
	u, _ := url.Parse(issuer)
	return strings.TrimSuffix(u.EscapedPath(), "/")
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	s.mux.ServeHTTP(w, r)
}

// Issuer returns the issuer identifier.
func (s *Server) Issuer() string { return s.cfg.Issuer }

// TokenURL returns the token endpoint's URL.
func (s *Server) TokenURL() string { return s.cfg.Issuer + pathToken }

// metadata is the discovery document (RFC 8414 §2, OIDC Discovery §3).
type metadata struct {
	Issuer                   string   `json:"issuer"`
	TokenEndpoint            string   `json:"token_endpoint"`
	JWKSURI                  string   `json:"jwks_uri"`
	GrantTypes               []string `json:"grant_types_supported"`
	ResponseTypes            []string `json:"response_types_supported"`
	TokenEndpointAuthMethods []string `json:"token_endpoint_auth_methods_supported"`
	SubjectTypes             []string `json:"subject_types_supported"`
	AccessTokenSigningAlgs   []string `json:"access_token_signing_alg_values_supported,omitempty"`
	ClaimsSupported          []string `json:"claims_supported"`
	IDTokenSigningAlgs       []string `json:"id_token_signing_alg_values_supported"`
	// Gatehouse extensions.
	PKIIssueEndpoint  string `json:"gatehouse_pki_issue_endpoint,omitempty"`
	PKIBundleEndpoint string `json:"gatehouse_pki_bundle_endpoint,omitempty"`
}

func (s *Server) handleDiscovery(w http.ResponseWriter, _ *http.Request) {
	grants := make([]string, 0, len(s.grants))
	for _, g := range []string{oauth.GrantPassword, oauth.GrantClientCredentials, oauth.GrantRefreshToken} {
		if s.grants[g] != nil {
			grants = append(grants, g)
		}
	}
	m := metadata{
		Issuer:                   s.cfg.Issuer,
		TokenEndpoint:            s.TokenURL(),
		JWKSURI:                  s.cfg.Issuer + pathJWKS,
		GrantTypes:               grants,
		ResponseTypes:            []string{}, // no authorization endpoint yet
		TokenEndpointAuthMethods: []string{"client_secret_basic", "client_secret_post"},
		SubjectTypes:             []string{"public"},
		AccessTokenSigningAlgs:   []string{s.cfg.SigningAlgorithm},
		ClaimsSupported: []string{"iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope",
			"roles", "sid", "preferred_username", "auth_time"},
		IDTokenSigningAlgs: []string{s.cfg.SigningAlgorithm},
	}
	m.PKIIssueEndpoint, m.PKIBundleEndpoint = s.pkiEndpoints()
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeJSONCacheable(w, m)
}

func (s *Server) handleJWKS(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=60")
	writeJSONCacheable(w, s.keys.published())
}

func writeJSONCacheable(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// internal logs an unexpected error and returns a generic server_error.
func (s *Server) internal(ctx context.Context, what string, err error) error {
	s.cfg.Logger.ErrorContext(ctx, what, "err", err)
	return &oauth.Error{Code: oauth.ErrServerError, Description: "internal error"}
}
