package authserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

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
	// AccessTokenTTL is the lifetime of access tokens and ID tokens. If
	// zero, 5m.
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
	// SessionTTL is how long a login at the server's own login page lasts
	// in the browser (the session cookie), during which further
	// authorization requests skip the login form. If zero, 12h.
	SessionTTL time.Duration

	// LoginThrottle configures the throttling of failed logins; the zero
	// value is the default (see LoginThrottle).
	LoginThrottle LoginThrottle
	// KeyPublishDelay is how long a rotated signing key is published in the
	// JWKS before it signs; keep it longer than KeyReloadInterval plus the
	// verifiers' JWKS cache lifetime. If zero, 10m; negative: at once.
	KeyPublishDelay time.Duration
	// KeyReloadInterval is how often Run reloads the signing keys from the
	// store, picking up rotations made by the CLI or another replica. If
	// zero, 30s.
	KeyReloadInterval time.Duration
	// GCInterval is how often Run deletes expired records. If zero, 10m.
	GCInterval time.Duration
	// EventRetention is how long events are kept; never less than the
	// longest access-token lifetime plus a minute. If zero, 24h.
	EventRetention time.Duration
	// PushPauseAfter is how long the deliveries of an SSF push stream may
	// fail without a success before the stream is paused (SSF 1.0 §8.1.2):
	// retries stop, its events are held, and delivery resumes where it
	// stopped when the receiver or an operator enables the stream again.
	// If zero, 10m; negative: never pause.
	PushPauseAfter time.Duration
	// AdminToken authenticates callers of AdminHandler's admin API. If
	// empty, the admin API refuses every request.
	AdminToken string
	// Registerer receives the server's Prometheus metrics. If nil, a
	// registry of the server's own; AdminHandler serves /metrics when the
	// Registerer is also a prometheus.Gatherer (as a *prometheus.Registry is).
	Registerer prometheus.Registerer

	// CA, if set, issues service certificates at the issuance endpoint
	// (POST /pki/v1/issue, announced in discovery) to clients presenting
	// their own client_credentials token. If nil, there is no endpoint.
	CA *ca.CA
	// MTLS, if set, turns on the mutual-TLS endpoints and certificate-bound
	// access tokens of RFC 8705 (see MTLS). If nil, there are none.
	MTLS *MTLS

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
	setDuration(&c.SessionTTL, 12*time.Hour)
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
	c.setOperationDefaults()
	return c.checkMTLS()
}

func setDuration(d *time.Duration, def time.Duration) {
	if *d == 0 {
		*d = def
	}
}

// Server is the authorization server. It is an http.Handler and is safe for
// concurrent use.
type Server struct {
	cfg Config
	// sleep waits (see settle); tests with a settable clock replace it.
	sleep   func(context.Context, time.Duration) error
	mux     *http.ServeMux
	handler http.Handler // mux, instrumented
	keys    *signingKeys
	grants  map[string]grant
	hashSem chan struct{}
	admin   *Admin
	metrics *metrics
	clients *clientCache
	// dummyHash is a hash of a random password under PasswordParams: an
	// unknown user is checked against it, so it costs what a wrong password
	// costs.
	dummyHash string

	refreshHasher   *keyring.Hasher
	successorHasher *keyring.Hasher
	secretHasher    *keyring.Hasher
	codeHasher      *keyring.Hasher
	csrfHasher      *keyring.Hasher

	// prefix is the issuer's path, below which every endpoint is served.
	prefix string
	// secureCookies is false only for an http issuer on a loopback address.
	secureCookies bool
	// accessHasher keys opaque access tokens; revocationHasher the
	// revocation markers (see revocation.go).
	accessHasher     *keyring.Hasher
	revocationHasher *keyring.Hasher

	ssf *transmitter // the Shared Signals transmitter (ssf.go)
}

// Endpoint paths below the issuer. Clients must find them by discovery.
const (
	pathToken = "/oauth2/token"
	pathJWKS  = "/oauth2/jwks"

	pathIntrospect = "/oauth2/introspect"
	pathRevoke     = "/oauth2/revoke"
)

// New returns a Server for cfg. It loads the signing keys from the store and
// creates the first one if there is none.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:             cfg,
		sleep:           sleepContext,
		mux:             http.NewServeMux(),
		hashSem:         make(chan struct{}, cfg.MaxHashConcurrency),
		clients:         newClientCache(cfg.Store, cfg.Now),
		refreshHasher:   cfg.Keyring.Hasher(keyring.PurposeRefreshToken),
		successorHasher: cfg.Keyring.Hasher(keyring.PurposeSuccessor),
		secretHasher:    cfg.Keyring.Hasher(keyring.PurposeClientSecret),
		codeHasher:      cfg.Keyring.Hasher(keyring.PurposeAuthCode),
		csrfHasher:      cfg.Keyring.Hasher(keyring.PurposeCSRF),
		prefix:          issuerPath(cfg.Issuer),
		secureCookies:   !loopbackHTTP(cfg.Issuer),

		accessHasher:     cfg.Keyring.Hasher(keyring.PurposeAccessToken),
		revocationHasher: cfg.Keyring.Hasher(keyring.PurposeRevocation),
	}
	dummy, err := password.Hash(keyring.RandomToken(16), cfg.PasswordParams)
	if err != nil {
		return nil, fmt.Errorf("authserver: dummy password hash: %w", err)
	}
	s.dummyHash = dummy
	if err := s.setUpSSF(); err != nil {
		return nil, err
	}
	if err := s.setUpOperations(ctx); err != nil {
		return nil, err
	}
	s.grants = map[string]grant{
		oauth.GrantPassword:          s.passwordGrant,
		oauth.GrantClientCredentials: s.clientCredentialsGrant,
		oauth.GrantRefreshToken:      s.refreshGrant,
		oauth.GrantAuthorizationCode: s.authorizationCodeGrant,
		oauth.GrantTokenExchange:     s.tokenExchangeGrant,
	}
	prefix := s.prefix
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
	s.mux.HandleFunc("GET "+prefix+pathAuthorize, s.handleAuthorize)
	s.mux.HandleFunc("POST "+prefix+pathAuthorize, s.handleAuthorize)
	s.mux.HandleFunc("POST "+prefix+pathLogin, s.handleLogin)
	s.mux.HandleFunc("POST "+prefix+pathConsent, s.handleConsent)
	s.mux.HandleFunc("GET "+prefix+pathLogout, s.handleLogout)
	s.mux.HandleFunc("POST "+prefix+pathLogout, s.handleLogout)
	s.mux.HandleFunc("POST "+prefix+pathLogoutConfirm, s.handleLogoutConfirm)
	s.mux.HandleFunc("GET "+prefix+pathUserinfo, s.handleUserinfo)
	s.mux.HandleFunc("POST "+prefix+pathUserinfo, s.handleUserinfo)
	s.mux.HandleFunc(prefix+pathIntrospect, s.handleIntrospect)
	s.mux.HandleFunc(prefix+pathRevoke, s.handleRevoke)
	s.registerPKI(prefix)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	return s, nil
}

// loopbackHTTP reports whether issuer is an http URL on a loopback host,
// where cookies cannot be Secure (see setCookie).
func loopbackHTTP(issuer string) bool {
	u, err := url.Parse(issuer)
	if err != nil || u.Scheme != "http" {
		return false
	}
	if strings.EqualFold(u.Hostname(), "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(u.Hostname())
	return err == nil && ip.IsLoopback()
}

// issuerPath returns the issuer URL's path without a trailing slash.
func issuerPath(issuer string) string {
	u, _ := url.Parse(issuer)
	return strings.TrimSuffix(u.EscapedPath(), "/")
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	s.handler.ServeHTTP(w, r)
}

// Issuer returns the issuer identifier.
func (s *Server) Issuer() string { return s.cfg.Issuer }

// TokenURL returns the token endpoint's URL.
func (s *Server) TokenURL() string { return s.cfg.Issuer + pathToken }

// metadata is the discovery document (RFC 8414 §2, OIDC Discovery §3).
type metadata struct {
	Issuer                string `json:"issuer"`
	AuthorizationEndpoint string `json:"authorization_endpoint"`
	TokenEndpoint         string `json:"token_endpoint"`
	UserinfoEndpoint      string `json:"userinfo_endpoint"`
	// OpenID Connect RP-Initiated Logout 1.0 §2.1.
	EndSessionEndpoint       string   `json:"end_session_endpoint"`
	JWKSURI                  string   `json:"jwks_uri"`
	ScopesSupported          []string `json:"scopes_supported"`
	GrantTypes               []string `json:"grant_types_supported"`
	ResponseTypes            []string `json:"response_types_supported"`
	ResponseModes            []string `json:"response_modes_supported"`
	CodeChallengeMethods     []string `json:"code_challenge_methods_supported"`
	TokenEndpointAuthMethods []string `json:"token_endpoint_auth_methods_supported"`
	SubjectTypes             []string `json:"subject_types_supported"`
	AccessTokenSigningAlgs   []string `json:"access_token_signing_alg_values_supported,omitempty"`
	ClaimsSupported          []string `json:"claims_supported"`
	IDTokenSigningAlgs       []string `json:"id_token_signing_alg_values_supported"`
	PromptValues             []string `json:"prompt_values_supported"`
	// RFC 9207: the authorization response names the issuer.
	AuthorizationResponseIss bool `json:"authorization_response_iss_parameter_supported"`
	// OIDC Discovery §3 makes request_uri_parameter_supported true when
	// absent, so both are stated.
	RequestParameter    bool `json:"request_parameter_supported"`
	RequestURIParameter bool `json:"request_uri_parameter_supported"`

	IntrospectionEndpoint    string   `json:"introspection_endpoint"`
	IntrospectionAuthMethods []string `json:"introspection_endpoint_auth_methods_supported"`
	RevocationEndpoint       string   `json:"revocation_endpoint"`
	RevocationAuthMethods    []string `json:"revocation_endpoint_auth_methods_supported"`

	// Algorithms of private_key_jwt client assertions.
	TokenEndpointAuthSigningAlgs []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	// Gatehouse extensions.
	PKIIssueEndpoint  string `json:"gatehouse_pki_issue_endpoint,omitempty"`
	PKIBundleEndpoint string `json:"gatehouse_pki_bundle_endpoint,omitempty"`
	// RFC 8705 §3.3 and §5.
	CertificateBoundAccessTokens bool              `json:"tls_client_certificate_bound_access_tokens,omitempty"`
	MTLSEndpointAliases          map[string]string `json:"mtls_endpoint_aliases,omitempty"`
}

func (s *Server) handleDiscovery(w http.ResponseWriter, _ *http.Request) {
	grants := make([]string, 0, len(s.grants))
	for _, g := range []string{oauth.GrantAuthorizationCode, oauth.GrantPassword, oauth.GrantClientCredentials,
		oauth.GrantRefreshToken, oauth.GrantTokenExchange} {
		if s.grants[g] != nil {
			grants = append(grants, g)
		}
	}
	m := metadata{
		Issuer:                   s.cfg.Issuer,
		AuthorizationEndpoint:    s.cfg.Issuer + pathAuthorize,
		TokenEndpoint:            s.TokenURL(),
		UserinfoEndpoint:         s.cfg.Issuer + pathUserinfo,
		EndSessionEndpoint:       s.cfg.Issuer + pathLogout,
		JWKSURI:                  s.cfg.Issuer + pathJWKS,
		ScopesSupported:          []string{scopeOpenID, scopeProfile, scopeRoles},
		GrantTypes:               grants,
		ResponseTypes:            []string{"code"},
		ResponseModes:            []string{"query"},
		CodeChallengeMethods:     []string{pkceS256},
		TokenEndpointAuthMethods: []string{store.AuthClientSecretBasic, store.AuthClientSecretPost, store.AuthPrivateKeyJWT, store.AuthNone},
		SubjectTypes:             []string{"public"},
		AccessTokenSigningAlgs:   s.keys.algorithms(),
		ClaimsSupported: []string{"iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope",
			"roles", "sid", "preferred_username", "auth_time", "nonce", "at_hash", "act"},
		IDTokenSigningAlgs:       s.keys.algorithms(),
		PromptValues:             []string{"none", "login", "consent"},
		AuthorizationResponseIss: true,

		TokenEndpointAuthSigningAlgs: jose.AllAlgorithms(),
	}
	// Introspection and revocation authenticate clients as the token
	// endpoint does.
	m.IntrospectionEndpoint, m.IntrospectionAuthMethods = s.cfg.Issuer+pathIntrospect, m.TokenEndpointAuthMethods
	m.RevocationEndpoint, m.RevocationAuthMethods = s.cfg.Issuer+pathRevoke, m.TokenEndpointAuthMethods
	m.PKIIssueEndpoint, m.PKIBundleEndpoint = s.pkiEndpoints()
	s.addMTLSMetadata(&m)
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
// grantError passes an *oauth.Error through and turns any other error into
// an internal one.
func (s *Server) grantError(ctx context.Context, what string, err error) error {
	if _, ok := errors.AsType[*oauth.Error](err); ok {
		return err
	}
	return s.internal(ctx, what, err)
}

func (s *Server) internal(ctx context.Context, what string, err error) error {
	s.cfg.Logger.ErrorContext(ctx, what, "err", err)
	return &oauth.Error{Code: oauth.ErrServerError, Description: "internal error"}
}
