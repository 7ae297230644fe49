package gateway

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/gatehouse-dev/gatehouse/internal/expiring"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/resource"
)

// basicAuth turns Basic credentials into access tokens with the password
// grant and caches the result per credential, so steady traffic costs no
// password hash and no call to the authorization server. The cache key is an
// HMAC of the credential under a per-process random key: the cache never
// holds a password, and its keys are useless outside this process.
type basicAuth struct {
	cfg       *Config
	verify    resource.TokenVerifier
	discovery *discovery
	key       [32]byte
	// macs holds HMAC-SHA-256 states keyed with key, reset after use:
	// keying one anew costs more than the hash of a credential.
	macs  sync.Pool
	group singleflight.Group
	// margin: an entry is dropped this long before its token expires.
	margin time.Duration
	// onLookup is told whether each cache lookup hit, for the metrics.
	onLookup func(hit bool)

	mu      sync.RWMutex
	entries map[[sha256.Size]byte]basicEntry
}

type basicEntry struct {
	principal *resource.Principal
	token     string
	until     time.Time
	// refusedAt is when an upstream refused the token of a retry
	// (retry.go); zero if none did.
	refusedAt time.Time
	// replaced is when the grant of this entry replaced a dropped one;
	// zero if it did not.
	replaced time.Time
	// dropped: an upstream refused the token; the next use makes a grant.
	dropped bool
}

func (e basicEntry) expiry() time.Time { return e.until }

func newBasicAuth(cfg *Config, v resource.TokenVerifier, d *discovery, onLookup func(bool)) *basicAuth {
	b := &basicAuth{cfg: cfg, verify: v, discovery: d, onLookup: onLookup, margin: 30 * time.Second,
		entries: map[[sha256.Size]byte]basicEntry{}}
	rand.Read(b.key[:])
	b.macs.New = func() any { return hmac.New(sha256.New, b.key[:]) }
	return b
}

// cacheKey is the HMAC of the credential: user, a NUL (which RFC 7617
// user-ids cannot contain), and the password.
func (b *basicAuth) cacheKey(user, pass string) [sha256.Size]byte {
	m := b.macs.Get().(hash.Hash)
	m.Write([]byte(user))
	m.Write([]byte{0})
	m.Write([]byte(pass))
	var k [sha256.Size]byte
	m.Sum(k[:0])
	m.Reset()
	b.macs.Put(m)
	return k
}

// authenticate returns the principal and access token for Basic
// credentials; endUserIP, the client's address ("" if unknown), is passed to
// the authorization server for its login throttling.
func (b *basicAuth) authenticate(ctx context.Context, user, pass, endUserIP string) (*resource.Principal, string, error) {
	key := b.cacheKey(user, pass)
	e, ok := b.cached(key)
	b.onLookup(ok)
	if ok {
		err := b.revoked(e)
		if err == nil {
			return e.principal, e.token, nil
		}
		if !errors.Is(err, resource.ErrRevoked) { // fail closed: no grant storm
			return nil, "", err
		}
	}
	// One password grant per credential at a time; concurrent requests with
	// the same credential wait for it.
	v, err, _ := b.group.Do(string(key[:]), func() (any, error) {
		// A flight that ended between the miss above and this call has
		// filled the cache: use it rather than making a second grant.
		if e, ok := b.cached(key); ok && b.revoked(e) == nil {
			return e, nil
		}
		return b.login(context.WithoutCancel(ctx), key, user, pass, endUserIP)
	})
	if err != nil {
		return nil, "", err
	}
	e = v.(basicEntry)
	return e.principal, e.token, nil
}

// drop marks the cache entry for the credential dropped if it holds the
// token refused, so that the next use makes a new grant; retry says
// whether that use is a retry of the refused request. It reports false,
// and keeps the entry, when a new grant so soon would only make an
// upstream that refuses every token cost a grant per request: within
// retryGrantInterval of the upstream refusing the token of a retry too,
// or, for a request that is not retried, of the entry replacing a dropped
// one.
func (b *basicAuth) drop(user, pass, refused string, retry bool) bool {
	key := b.cacheKey(user, pass)
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.entries[key]
	if !ok || e.token != refused || e.dropped {
		return true // replaced already, or gone
	}
	now := b.cfg.Now()
	if !e.refusedAt.IsZero() && now.Sub(e.refusedAt) < retryGrantInterval ||
		!retry && !e.replaced.IsZero() && now.Sub(e.replaced) < retryGrantInterval {
		return false
	}
	e.dropped = true
	b.entries[key] = e
	return true
}

// refusedInRetry records that an upstream refused token, just obtained
// for a retry, too (see drop).
func (b *basicAuth) refusedInRetry(user, pass, token string) {
	key := b.cacheKey(user, pass)
	b.mu.Lock()
	defer b.mu.Unlock()
	if e, ok := b.entries[key]; ok && e.token == token {
		e.refusedAt = b.cfg.Now()
		b.entries[key] = e
	}
}

// revoked returns Config.Revocations' verdict, if set, on the token of a
// cache entry; a revoked token is replaced by a new password grant.
func (b *basicAuth) revoked(e basicEntry) error {
	if b.cfg.Revocations == nil {
		return nil
	}
	return b.cfg.Revocations.Check(e.principal)
}

// cached returns the live cache entry for key, if any.
func (b *basicAuth) cached(key [sha256.Size]byte) (basicEntry, bool) {
	b.mu.RLock()
	e, ok := b.entries[key]
	b.mu.RUnlock()
	return e, ok && !e.dropped && b.cfg.Now().Before(e.until)
}

// login makes the password grant and caches a success; failures are never
// cached. The grant names the end user's address in oauth.ParamEndUserIP:
// the gateway makes every user's grants from its own address, so the
// authorization server, when it has the gateway's client registered as a
// trusted proxy, throttles failed logins per end user instead (other
// servers ignore the parameter, RFC 6749 §3.2).
func (b *basicAuth) login(ctx context.Context, key [sha256.Size]byte, user, pass, endUserIP string) (basicEntry, error) {
	tokenURL, err := b.tokenEndpoint(ctx)
	if err != nil {
		return basicEntry{}, err
	}
	tc := oauth.TokenClient{TokenURL: tokenURL, ClientID: b.cfg.ClientID, ClientSecret: b.cfg.ClientSecret,
		AuthMethod: b.cfg.TokenEndpointAuthMethod, HTTPClient: b.cfg.HTTPClient}
	params := url.Values{"grant_type": {oauth.GrantPassword}, "username": {user}, "password": {pass}}
	if endUserIP != "" {
		params.Set(oauth.ParamEndUserIP, endUserIP)
	}
	resp, err := tc.Token(ctx, params)
	if oe, ok := errors.AsType[*oauth.Error](err); ok {
		if oe.Code == oauth.ErrInvalidGrant || oe.Code == oauth.ErrInvalidRequest {
			return basicEntry{}, errBadCredentials
		}
		b.cfg.Logger.ErrorContext(ctx, "password grant refused", "code", oe.Code, "description", oe.Description)
		return basicEntry{}, fmt.Errorf("%w: %w", errUnavailable, err)
	}
	if err != nil {
		return basicEntry{}, fmt.Errorf("%w: %w", errUnavailable, err)
	}
	p, err := b.verify.Verify(ctx, resp.AccessToken)
	if err != nil {
		return basicEntry{}, fmt.Errorf("verify token from password grant: %w", err)
	}
	e := basicEntry{principal: p, token: resp.AccessToken, until: p.Expiry.Add(-b.margin)}
	b.mu.Lock()
	if old, ok := b.entries[key]; ok && old.dropped {
		e.replaced = b.cfg.Now()
	}
	if len(b.entries) >= b.cfg.BasicCacheSize {
		expiring.MakeRoom(b.entries, b.cfg.Now(), basicEntry.expiry)
	}
	b.entries[key] = e
	b.mu.Unlock()
	return e, nil
}

// tokenEndpoint returns the configured token URL, or the one discovery
// names; a failed discovery is tried again on a later request.
func (b *basicAuth) tokenEndpoint(ctx context.Context) (string, error) {
	if b.cfg.TokenURL != "" {
		return b.cfg.TokenURL, nil
	}
	meta, err := b.discovery.endpoints(ctx)
	if err != nil {
		return "", err
	}
	if meta.TokenEndpoint == "" {
		return "", fmt.Errorf("%w: discovery names no token_endpoint", errUnavailable)
	}
	return meta.TokenEndpoint, nil
}

// endUserIP returns the address of the client that sent r, or "" if its
// RemoteAddr holds no IP address (a Unix socket). It is the TCP peer: put
// the gateway at the edge, or behind a proxy that preserves it.
func endUserIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return ""
	}
	return ip.WithZone("").Unmap().String()
}
