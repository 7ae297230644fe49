package resource

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/gatehouse-dev/gatehouse/internal/jose"
)

// IntrospectionConfig configures an Introspector. IntrospectionURL,
// ClientID and ClientSecret are required.
type IntrospectionConfig struct {
	// IntrospectionURL is the authorization server's RFC 7662 endpoint.
	IntrospectionURL string
	// ClientID and ClientSecret authenticate this service (client_secret_basic).
	ClientID, ClientSecret string
	// Issuer, if set, must equal the response's "iss".
	Issuer string
	// Audience, if set, must share a value with the response's "aud".
	Audience []string
	// CacheTTL bounds how long an active answer is reused (never past the
	// token's exp). If zero, 30s; negative turns caching off. Inactive
	// answers are not cached, so a token is never refused from cache
	// after it became valid — and revocation is seen within CacheTTL.
	CacheTTL time.Duration
	// CacheSize bounds the cache. If zero, 10000.
	CacheSize int
	// OnCacheLookup, if set, is called after each cache lookup with whether
	// it hit, as in Config.
	OnCacheLookup func(hit bool)
	// RolesClaim and UsernameClaim as in Config.
	RolesClaim, UsernameClaim string
	// HTTPClient; if nil, a client with a 10s timeout.
	HTTPClient *http.Client
	// Now is the clock; if nil, time.Now.
	Now func() time.Time
}

// Introspector verifies opaque access tokens by asking the authorization
// server (OAuth 2.0 Token Introspection, RFC 7662), for services deployed
// without the gateway's phantom tokens. Answers are cached briefly. It is a
// TokenVerifier and safe for concurrent use.
type Introspector struct {
	cfg   IntrospectionConfig
	roles []string
	group singleflight.Group

	mu    sync.RWMutex
	cache map[[sha256.Size]byte]introspected
}

type introspected struct {
	p     *Principal
	until time.Time
}

// NewIntrospector returns an Introspector for cfg.
func NewIntrospector(cfg IntrospectionConfig) (*Introspector, error) {
	if cfg.IntrospectionURL == "" || cfg.ClientID == "" || cfg.ClientSecret == "" {
		return nil, errors.New("resource: IntrospectionConfig needs IntrospectionURL, ClientID and ClientSecret")
	}
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = 30 * time.Second
	}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = 10000
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.UsernameClaim == "" {
		cfg.UsernameClaim = "username"
	}
	in := &Introspector{cfg: cfg, cache: map[[sha256.Size]byte]introspected{}}
	if cfg.RolesClaim != "" {
		in.roles = strings.Split(cfg.RolesClaim, ".")
	} else {
		in.roles = []string{"roles"}
	}
	return in, nil
}

// Verify implements TokenVerifier: the token is accepted when the server
// says it is active (and, if configured, issued by Issuer for Audience),
// and, if the answer binds it to a certificate (cnf, RFC 8705 §3.2), when
// ctx carries that certificate (WithPeerCertificate).
func (in *Introspector) Verify(ctx context.Context, raw string) (*Principal, error) {
	p, err := in.verify(ctx, raw)
	if err != nil {
		return nil, err
	}
	return presented(ctx, p)
}

func (in *Introspector) verify(ctx context.Context, raw string) (*Principal, error) {
	if raw == "" || len(raw) > 16<<10 {
		return nil, fmt.Errorf("%w: empty or oversized token", ErrInvalidToken)
	}
	key := sha256.Sum256([]byte(raw))
	now := in.cfg.Now()
	in.mu.RLock()
	hit, ok := in.cache[key]
	in.mu.RUnlock()
	ok = ok && now.Before(hit.until)
	if in.cfg.OnCacheLookup != nil {
		in.cfg.OnCacheLookup(ok)
	}
	if ok {
		return hit.p, nil
	}
	v, err, _ := in.group.Do(string(key[:]), func() (any, error) {
		return in.introspect(context.WithoutCancel(ctx), key, raw)
	})
	if err != nil {
		return nil, err
	}
	return v.(*Principal), nil
}

func (in *Introspector) introspect(ctx context.Context, key [sha256.Size]byte, raw string) (*Principal, error) {
	body := url.Values{"token": {raw}, "token_type_hint": {"access_token"}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, in.cfg.IntrospectionURL, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(url.QueryEscape(in.cfg.ClientID), url.QueryEscape(in.cfg.ClientSecret))
	resp, err := in.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: introspection: %w", ErrKeysUnavailable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: introspection: HTTP %d", ErrKeysUnavailable, resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("%w: introspection: %w", ErrKeysUnavailable, err)
	}
	var r struct {
		Active    bool          `json:"active"`
		Scope     string        `json:"scope"`
		ClientID  string        `json:"client_id"`
		Subject   string        `json:"sub"`
		Issuer    string        `json:"iss"`
		Audience  jose.Audience `json:"aud"`
		Expiry    int64         `json:"exp"`
		IssuedAt  int64         `json:"iat"`
		TokenID   string        `json:"jti"`
		SessionID string        `json:"sid"`
		TokenType string        `json:"token_type"`
		// TokenUse is an extension (Ory Hydra, Gatehouse) saying which
		// kind of token this is.
		TokenUse string `json:"token_use"`
		// Act names the client acting for the subject after a token
		// exchange (RFC 8693 §4.1).
		Act *struct {
			Subject string `json:"sub"`
		} `json:"act"`
		Cnf *jose.Confirmation `json:"cnf"`
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%w: introspection response: %w", ErrKeysUnavailable, err)
	}
	now := in.cfg.Now()
	exp := time.Unix(r.Expiry, 0)
	switch {
	case !r.Active:
		return nil, fmt.Errorf("%w: inactive", ErrInvalidToken)
	case r.Expiry == 0 || !now.Before(exp):
		return nil, fmt.Errorf("%w: no exp or expired", ErrInvalidToken)
	case !isAccessToken(r.TokenType, r.TokenUse):
		// A refresh token, or a token bound to a proof (DPoP) that a bearer
		// presentation lacks, is active but no bearer access token.
		return nil, fmt.Errorf("%w: token_type %q, token_use %q", ErrInvalidToken, r.TokenType, r.TokenUse)
	case in.cfg.Issuer != "" && r.Issuer != in.cfg.Issuer:
		return nil, fmt.Errorf("%w: issuer %q", ErrInvalidToken, r.Issuer)
	case len(in.cfg.Audience) > 0 && !containsAny(r.Audience, in.cfg.Audience):
		return nil, fmt.Errorf("%w: audience %v", ErrInvalidToken, []string(r.Audience))
	}
	p := &Principal{Issuer: r.Issuer, Subject: r.Subject, ClientID: r.ClientID, Scopes: strings.Fields(r.Scope),
		Audience: r.Audience, SessionID: r.SessionID, TokenID: r.TokenID, Expiry: exp, Token: raw}
	if r.IssuedAt != 0 { // for Revocations' not-before checks
		p.IssuedAt = time.Unix(r.IssuedAt, 0)
	}
	if r.Act != nil {
		p.Actor = r.Act.Subject
	}
	if r.Cnf != nil {
		p.CertificateThumbprint = r.Cnf.X5tS256
	}
	readClaims(data, in.roles, in.cfg.UsernameClaim, p)
	if in.cfg.CacheTTL > 0 {
		until := now.Add(in.cfg.CacheTTL)
		if exp.Before(until) {
			until = exp
		}
		in.mu.Lock()
		if len(in.cache) >= in.cfg.CacheSize {
			for k, e := range in.cache { // drop expired entries, else one arbitrary entry
				if !now.Before(e.until) {
					delete(in.cache, k)
				}
			}
			for k := range in.cache {
				if len(in.cache) < in.cfg.CacheSize {
					break
				}
				delete(in.cache, k)
			}
		}
		in.cache[key] = introspected{p: p, until: until}
		in.mu.Unlock()
	}
	return p, nil
}

// isAccessToken reports whether an introspection answer's token_type and
// token_use (each optional) describe a bearer access token.
func isAccessToken(tokenType, tokenUse string) bool {
	typeOK := tokenType == "" || strings.EqualFold(tokenType, "bearer") || tokenType == "access_token"
	return typeOK && (tokenUse == "" || tokenUse == "access_token")
}

func containsAny(have jose.Audience, want []string) bool {
	for _, w := range want {
		if have.Contains(w) {
			return true
		}
	}
	return false
}

// readClaims sets p's roles (at the dotted path) and username from a JSON
// object.
func readClaims(data []byte, rolesPath []string, usernameClaim string, p *Principal) {
	var m map[string]any
	if json.Unmarshal(data, &m) != nil {
		return
	}
	if s, ok := m[usernameClaim].(string); ok {
		p.Username = s
	}
	var cur any = m
	for _, part := range rolesPath {
		obj, ok := cur.(map[string]any)
		if !ok {
			return
		}
		cur = obj[part]
	}
	switch x := cur.(type) {
	case []any:
		for _, r := range x {
			if s, ok := r.(string); ok {
				p.Roles = append(p.Roles, s)
			}
		}
	case string:
		p.Roles = strings.Fields(x)
	}
}

// Either verifies JWTs with JWT and anything else with Opaque: a service
// that receives both kinds of access token uses it as its TokenVerifier.
type Either struct {
	JWT    TokenVerifier
	Opaque TokenVerifier
}

// Verify implements TokenVerifier.
func (e Either) Verify(ctx context.Context, raw string) (*Principal, error) {
	if strings.Count(raw, ".") == 2 {
		return e.JWT.Verify(ctx, raw)
	}
	return e.Opaque.Verify(ctx, raw)
}
