package gateway

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/expiring"
	"github.com/gatehouse-dev/gatehouse/internal/jose"
	"github.com/gatehouse-dev/gatehouse/resource"
)

// The phantom-token pattern (see Opaque): opaque tokens are introspected by
// a resource.Introspector, found lazily through discovery, and the gateway
// forwards a short-lived JWT of its own instead.

// introspector is a resource.Introspector whose endpoint is found by
// discovery on first use; a failed discovery is tried again on a later
// request.
type introspector struct {
	cfg       resource.IntrospectionConfig
	discovery *discovery

	mu sync.Mutex
	in atomic.Pointer[resource.Introspector]
}

// Verify implements resource.TokenVerifier.
func (l *introspector) Verify(ctx context.Context, raw string) (*resource.Principal, error) {
	in := l.in.Load()
	if in == nil {
		var err error
		if in, err = l.init(ctx); err != nil {
			return nil, err
		}
	}
	return in.Verify(ctx, raw)
}

func (l *introspector) init(ctx context.Context) (*resource.Introspector, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if in := l.in.Load(); in != nil {
		return in, nil
	}
	cfg := l.cfg
	if cfg.IntrospectionURL == "" {
		meta, err := l.discovery.endpoints(ctx)
		if err != nil {
			return nil, err
		}
		if meta.IntrospectionEndpoint == "" {
			return nil, fmt.Errorf("%w: discovery names no introspection_endpoint", errUnavailable)
		}
		cfg.IntrospectionURL = meta.IntrospectionEndpoint
	}
	in, err := resource.NewIntrospector(cfg)
	if err != nil {
		return nil, err
	}
	l.in.Store(in)
	return in, nil
}

// phantoms mints phantom tokens and publishes their key. A phantom token is
// reused for the same opaque token and route while at least half of its
// lifetime is left, so steady traffic costs no signature. Safe for
// concurrent use.
type phantoms struct {
	key      *jose.PrivateKey
	jwks     []byte // the JWKS document of key's public half
	issuer   string
	ttl      time.Duration
	size     int
	now      func() time.Time
	onLookup func(hit bool)

	mu    sync.RWMutex
	cache map[phantomKey]phantomEntry
}

type phantomKey struct {
	token [sha256.Size]byte // of the opaque token
	route *route
}

type phantomEntry struct {
	raw   string
	until time.Time // reuse it until then
}

func (e phantomEntry) expiry() time.Time { return e.until }

func newPhantoms(o *Opaque, now func() time.Time, onLookup func(bool)) (*phantoms, error) {
	var key *jose.PrivateKey
	var err error
	if o.SigningKey != nil {
		key, err = jose.NewPrivateKey(o.SigningKey)
	} else {
		key, err = jose.GenerateKey(jose.ES256)
	}
	if err != nil {
		return nil, fmt.Errorf("phantom-token key: %w", err)
	}
	jwks, err := jose.NewKeySet(key.Public()).MarshalJSON()
	if err != nil {
		return nil, err
	}
	return &phantoms{key: key, jwks: jwks, issuer: o.Issuer, ttl: o.TTL, size: o.CacheSize, now: now,
		onLookup: onLookup, cache: map[phantomKey]phantomEntry{}}, nil
}

// phantomClaims are the claims of a phantom token: those of an access
// token, and the actor of a delegated one.
type phantomClaims struct {
	jose.Claims
	Act *actor `json:"act,omitempty"`
}

type actor struct {
	Subject string `json:"sub"`
}

// token returns the phantom token to forward on rt for the caller p, who
// presented the opaque token opaque.
func (ph *phantoms) token(rt *route, p *resource.Principal, opaque string) (string, error) {
	now := ph.now()
	key := phantomKey{token: sha256.Sum256([]byte(opaque)), route: rt}
	ph.mu.RLock()
	e, ok := ph.cache[key]
	ph.mu.RUnlock()
	ok = ok && now.Before(e.until)
	ph.onLookup(ok)
	if ok {
		return e.raw, nil
	}
	exp := now.Add(ph.ttl)
	if p.Expiry.Before(exp) {
		exp = p.Expiry
	}
	if !now.Before(exp) {
		return "", fmt.Errorf("%w: expired", resource.ErrInvalidToken)
	}
	c := phantomClaims{Claims: jose.Claims{
		Issuer: ph.issuer, Subject: p.Subject, Audience: rt.audience,
		Expiry: jose.NewNumericDate(exp), IssuedAt: jose.NewNumericDate(now), ID: rand.Text(),
		ClientID: p.ClientID, Scope: strings.Join(p.Scopes, " "), SessionID: p.SessionID,
		Username: p.Username, Roles: p.Roles,
	}}
	if p.Actor != "" {
		c.Act = &actor{Subject: p.Actor}
	}
	raw, err := jose.Sign(ph.key, jose.TypeAccessToken, c)
	if err != nil {
		return "", err
	}
	ph.mu.Lock()
	if len(ph.cache) >= ph.size {
		expiring.MakeRoom(ph.cache, now, phantomEntry.expiry)
	}
	ph.cache[key] = phantomEntry{raw: raw, until: now.Add(exp.Sub(now) / 2)}
	ph.mu.Unlock()
	return raw, nil
}

// serveJWKS publishes the phantom-token key. It changes only when the
// gateway is built with another key, so caches may keep it a few minutes.
func (ph *phantoms) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Write(ph.jwks)
}
