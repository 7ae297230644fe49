package resource

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/jose"
)

// ErrInvalidToken is wrapped by every error Verify returns for a token that
// must be refused (malformed, expired, badly signed, wrong issuer, audience,
// type or algorithm). Other errors mean the token could not be checked.
var ErrInvalidToken = jose.ErrInvalid

// Config configures a Verifier. Issuer and Audience are required.
type Config struct {
	// Issuer is the authorization server's issuer identifier; tokens must
	// carry it in "iss", and discovery is read below it.
	Issuer string
	// Audience lists the values of which the token's "aud" must contain one:
	// the identifiers of this resource server.
	Audience []string
	// JWKSURL; if empty, the jwks_uri from the issuer's discovery document.
	JWKSURL string
	// Algorithms allowed; if empty, ES256, RS256 and EdDSA. Only asymmetric
	// algorithms can be allowed.
	Algorithms []string
	// Leeway for exp, nbf and iat; if zero, 30s.
	Leeway time.Duration
	// AccessTokenTypes lists the accepted values of the "typ" header. If
	// empty, only "at+jwt" (RFC 9068 §2.1), which no ID token or other JWT
	// of the issuer carries.
	//
	// Some authorization servers type their access tokens plain "JWT"
	// (github.com/oauth2-proxy/mockoidc, for one). Adding "JWT" here
	// accepts them — and with them any other JWT that issuer signs for this
	// audience, such as an ID token whose audience is a client this service
	// also trusts. Add it only for such a server, and keep the audience
	// specific to resource servers.
	AccessTokenTypes []string
	// RolesClaim names the claim holding the roles, with dots for nested
	// objects (Keycloak: "realm_access.roles"). If empty, "roles".
	RolesClaim string
	// UsernameClaim names the claim holding the username. If empty,
	// "preferred_username".
	UsernameClaim string
	// CacheSize bounds the verified-token cache. If zero, 10000; negative
	// turns the cache off.
	CacheSize int
	// OnCacheLookup, if set, is called after each lookup in the
	// verified-token cache with whether it hit: a hook for metrics. It runs
	// on the request path, so it must be fast, and safe for concurrent use.
	OnCacheLookup func(hit bool)
	// MinRefetchInterval is the shortest time between two JWKS fetches
	// caused by unknown key IDs. If zero, 10s.
	MinRefetchInterval time.Duration
	// RefreshInterval is the age after which the JWKS is refreshed in the
	// background. If zero, 5m.
	RefreshInterval time.Duration
	// Revocations, if set, is checked on every Verify, cache hits included;
	// a revoked token gets an error wrapping ErrRevoked. If nil, a token is
	// good until it expires.
	Revocations Revocations
	// HTTPClient fetches discovery and the JWKS; if nil, a client with a 10s
	// timeout.
	HTTPClient *http.Client
	// Now is the clock; if nil, time.Now.
	Now func() time.Time
}

// Verifier verifies access tokens. It is safe for concurrent use.
type Verifier struct {
	cfg    Config
	keys   jose.Keys
	expect jose.Expect
	cache  *tokenCache
	roles  []string // RolesClaim split at dots; nil for the default
}

// NewVerifier returns a Verifier for cfg. It does no I/O: the JWKS is
// fetched on first use, so a service may start before its issuer.
func NewVerifier(cfg Config) (*Verifier, error) {
	if cfg.Issuer == "" || len(cfg.Audience) == 0 {
		return nil, errors.New("resource: Config needs Issuer and Audience")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MinRefetchInterval == 0 {
		cfg.MinRefetchInterval = 10 * time.Second
	}
	if cfg.RefreshInterval == 0 {
		cfg.RefreshInterval = 5 * time.Minute
	}
	keys := &remoteKeys{issuer: cfg.Issuer, jwksURL: cfg.JWKSURL, client: cfg.HTTPClient, now: cfg.Now,
		minRefetch: cfg.MinRefetchInterval, maxAge: cfg.RefreshInterval}
	return newVerifier(cfg, keys)
}

// NewStaticVerifier returns a Verifier that checks signatures against a
// fixed JWKS document instead of fetching one; for tests and for deployments
// that distribute keys out of band.
func NewStaticVerifier(cfg Config, jwks []byte) (*Verifier, error) {
	set, err := jose.ParseKeySet(jwks)
	if err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return newVerifier(cfg, set)
}

func newVerifier(cfg Config, keys jose.Keys) (*Verifier, error) {
	if cfg.Issuer == "" || len(cfg.Audience) == 0 {
		return nil, errors.New("resource: Config needs Issuer and Audience")
	}
	if cfg.UsernameClaim == "" {
		cfg.UsernameClaim = "preferred_username"
	}
	types := cfg.AccessTokenTypes
	if len(types) == 0 {
		types = []string{jose.TypeAccessToken}
	}
	if slices.Contains(types, "") {
		return nil, errors.New("resource: AccessTokenTypes holds an empty type")
	}
	v := &Verifier{cfg: cfg, keys: keys, expect: jose.Expect{
		Issuer: cfg.Issuer, Audience: cfg.Audience, Types: types,
		Algorithms: cfg.Algorithms, Leeway: cfg.Leeway,
	}}
	// Reject a bad allow-list now rather than on every request.
	if _, err := jose.Verify(context.Background(), "", keys, v.expect); errors.Is(err, jose.ErrAlgorithm) {
		return nil, err
	}
	if cfg.RolesClaim != "" && cfg.RolesClaim != "roles" {
		v.roles = strings.Split(cfg.RolesClaim, ".")
	}
	if cfg.CacheSize >= 0 {
		size := cfg.CacheSize
		if size == 0 {
			size = 10000
		}
		v.cache = newTokenCache(size)
	}
	return v, nil
}

// Verify checks raw and returns its principal. An error wrapping
// ErrInvalidToken means the token must be refused; ErrKeysUnavailable means
// it could not be checked. A certificate-bound token (RFC 8705) is refused
// with ErrCertificateMismatch unless ctx carries its certificate
// (WithPeerCertificate).
func (v *Verifier) Verify(ctx context.Context, raw string) (*Principal, error) {
	p, err := v.verify(ctx, raw)
	if err != nil {
		return nil, err
	}
	return presented(ctx, p)
}

func (v *Verifier) verify(ctx context.Context, raw string) (*Principal, error) {
	now := v.cfg.Now()
	var key [sha256.Size]byte
	if v.cache != nil {
		key = sha256.Sum256([]byte(raw))
		p := v.cache.get(key, now)
		if v.cfg.OnCacheLookup != nil {
			v.cfg.OnCacheLookup(p != nil)
		}
		if p != nil {
			return v.checkRevoked(p)
		}
	}
	want := v.expect
	want.Now = now
	c, err := jose.Verify(ctx, raw, v.keys, want)
	if err != nil {
		return nil, err
	}
	p := &Principal{
		Issuer: c.Issuer, Subject: c.Subject, Username: c.Username, ClientID: c.ClientID,
		Roles: c.Roles, Scopes: strings.Fields(c.Scope), Audience: c.Audience,
		SessionID: c.SessionID, TokenID: c.ID, KeyID: c.KeyID, Expiry: c.Expiry.Time(), Token: raw,
	}
	if c.Act != nil {
		p.Actor = c.Act.Subject
	}
	if c.IssuedAt != nil {
		p.IssuedAt = c.IssuedAt.Time()
	}
	if c.Cnf != nil {
		p.CertificateThumbprint = c.Cnf.X5tS256
	}
	if v.roles != nil || v.cfg.UsernameClaim != "preferred_username" {
		v.customClaims(c.Raw, p)
	}
	if v.cache != nil {
		v.cache.put(key, p, now)
	}
	return v.checkRevoked(p)
}

// checkRevoked returns p unless Config.Revocations refuses it.
func (v *Verifier) checkRevoked(p *Principal) (*Principal, error) {
	if v.cfg.Revocations != nil {
		if err := v.cfg.Revocations.Check(p); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// Ready reports whether v can verify tokens now: nil once it holds
// verification keys (even if its issuer is down at the moment, as it keeps
// using them), else the error of fetching them now. A readiness probe calls
// it.
func (v *Verifier) Ready(ctx context.Context) error {
	if r, ok := v.keys.(interface{ ready(context.Context) error }); ok {
		return r.ready(ctx)
	}
	return nil // a static key set
}

// customClaims reads roles and username from configured claim names.
func (v *Verifier) customClaims(raw []byte, p *Principal) {
	if v.roles != nil {
		p.Roles = nil // the configured claim replaces "roles"
	}
	readClaims(raw, v.roles, v.cfg.UsernameClaim, p)
}
