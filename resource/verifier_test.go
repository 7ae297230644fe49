package resource_test

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/jose"
	"github.com/gatehouse-dev/gatehouse/resource"
)

const (
	staticIssuer = "https://issuer.example"
	testAudience = "https://orders.example"
)

// clock is a settable clock for Config.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func generateKey(t testing.TB, alg string) *jose.PrivateKey {
	t.Helper()
	key, err := jose.GenerateKey(alg)
	if err != nil {
		t.Fatalf("GenerateKey(%s): %v", alg, err)
	}
	return key
}

// mint signs an access token for alice from iss, valid for an hour from
// now, with the claims changed by edit.
func mint(t testing.TB, key *jose.PrivateKey, iss string, now time.Time, edit func(*jose.Claims)) string {
	t.Helper()
	c := jose.Claims{
		Issuer:   iss,
		Subject:  "alice",
		Audience: jose.Audience{testAudience},
		Expiry:   jose.NewNumericDate(now.Add(time.Hour)),
		IssuedAt: jose.NewNumericDate(now),
		Scope:    "orders:read orders:write",
		Roles:    []string{"user"},
	}
	if edit != nil {
		edit(&c)
	}
	return sign(t, key, c)
}

func sign(t testing.TB, key *jose.PrivateKey, claims any) string {
	t.Helper()
	raw, err := jose.Sign(key, jose.TypeAccessToken, claims)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return raw
}

func jwks(t testing.TB, keys ...*jose.PrivateKey) []byte {
	t.Helper()
	pubs := make([]jose.PublicKey, len(keys))
	for i, k := range keys {
		pubs[i] = k.Public()
	}
	data, err := jose.NewKeySet(pubs...).MarshalJSON()
	if err != nil {
		t.Fatalf("marshal JWKS: %v", err)
	}
	return data
}

// newStaticVerifier returns a Verifier for staticIssuer that trusts key.
func newStaticVerifier(t testing.TB, key *jose.PrivateKey, edit func(*resource.Config)) *resource.Verifier {
	t.Helper()
	cfg := resource.Config{Issuer: staticIssuer, Audience: []string{testAudience}}
	if edit != nil {
		edit(&cfg)
	}
	v, err := resource.NewStaticVerifier(cfg, jwks(t, key))
	if err != nil {
		t.Fatalf("NewStaticVerifier: %v", err)
	}
	return v
}

// issuer is an authorization server as far as a Verifier can tell: it
// serves discovery and a JWKS over HTTP and counts the requests.
type issuer struct {
	URL string

	mu            sync.Mutex
	keys          []*jose.PrivateKey
	metadataPath  string // the discovery document's path
	metadataIssue string // "issuer" in discovery; if empty, URL
	noJWKSURI     bool
	gate          chan struct{} // if not nil, JWKS requests wait for it to close

	down          atomic.Bool // answer every request 503
	discoveryHits atomic.Int64
	jwksHits      atomic.Int64
}

func newIssuer(t testing.TB, keys ...*jose.PrivateKey) *issuer {
	t.Helper()
	is := &issuer{keys: keys, metadataPath: "/.well-known/openid-configuration"}
	srv := httptest.NewServer(http.HandlerFunc(is.serveHTTP))
	t.Cleanup(srv.Close)
	is.URL = srv.URL
	return is
}

func (is *issuer) serveHTTP(w http.ResponseWriter, r *http.Request) {
	is.mu.Lock()
	keys, path, iss, noJWKSURI, gate := is.keys, is.metadataPath, is.metadataIssue, is.noJWKSURI, is.gate
	is.mu.Unlock()
	switch r.URL.Path {
	case "/.well-known/openid-configuration", "/.well-known/oauth-authorization-server":
		is.discoveryHits.Add(1)
		if is.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		if r.URL.Path != path {
			http.NotFound(w, r)
			return
		}
		if iss == "" {
			iss = is.URL
		}
		meta := map[string]string{"issuer": iss, "jwks_uri": is.URL + "/jwks"}
		if noJWKSURI {
			delete(meta, "jwks_uri")
		}
		json.NewEncoder(w).Encode(meta)
	case "/jwks":
		is.jwksHits.Add(1)
		if gate != nil {
			<-gate
		}
		if is.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		pubs := make([]jose.PublicKey, len(keys))
		for i, k := range keys {
			pubs[i] = k.Public()
		}
		json.NewEncoder(w).Encode(jose.NewKeySet(pubs...))
	default:
		http.NotFound(w, r)
	}
}

// publish replaces the keys in the JWKS.
func (is *issuer) publish(keys ...*jose.PrivateKey) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.keys = keys
}

func (is *issuer) set(f func(*issuer)) {
	is.mu.Lock()
	defer is.mu.Unlock()
	f(is)
}

func (is *issuer) token(t testing.TB, key *jose.PrivateKey, now time.Time) string {
	t.Helper()
	return mint(t, key, is.URL, now, nil)
}

// verifier returns a Verifier that discovers is, on clk if not nil.
func (is *issuer) verifier(t testing.TB, clk *clock, edit func(*resource.Config)) *resource.Verifier {
	t.Helper()
	cfg := resource.Config{Issuer: is.URL, Audience: []string{testAudience}}
	if clk != nil {
		cfg.Now = clk.Now
	}
	if edit != nil {
		edit(&cfg)
	}
	v, err := resource.NewVerifier(cfg)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	return v
}

func wantHits(t *testing.T, what string, got *atomic.Int64, want int64) {
	t.Helper()
	if n := got.Load(); n != want {
		t.Errorf("got %d %s requests, want %d", n, what, want)
	}
}

// eventually waits up to 5s for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestNewVerifierConfig(t *testing.T) {
	key := generateKey(t, jose.ES256)
	tests := []struct {
		name    string
		cfg     resource.Config
		wantErr error // nil: any error
	}{
		{name: "no issuer", cfg: resource.Config{Audience: []string{testAudience}}},
		{name: "no audience", cfg: resource.Config{Issuer: staticIssuer}},
		{name: "HS256 allowed", cfg: resource.Config{Issuer: staticIssuer, Audience: []string{testAudience}, Algorithms: []string{"HS256"}}, wantErr: jose.ErrAlgorithm},
		{name: "none allowed", cfg: resource.Config{Issuer: staticIssuer, Audience: []string{testAudience}, Algorithms: []string{"none"}}, wantErr: jose.ErrAlgorithm},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			constructors := map[string]func() (*resource.Verifier, error){
				"NewVerifier":       func() (*resource.Verifier, error) { return resource.NewVerifier(tc.cfg) },
				"NewStaticVerifier": func() (*resource.Verifier, error) { return resource.NewStaticVerifier(tc.cfg, jwks(t, key)) },
			}
			for name, newVerifier := range constructors {
				v, err := newVerifier()
				if err == nil || v != nil {
					t.Errorf("%s: got (%v, %v), want an error", name, v, err)
					continue
				}
				if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
					t.Errorf("%s: got %v, want %v", name, err, tc.wantErr)
				}
			}
		})
	}
}

func TestVerifierDiscovery(t *testing.T) {
	key := generateKey(t, jose.ES256)
	tests := []struct {
		name          string
		setup         func(*issuer)
		jwksURL       bool // set Config.JWKSURL
		wantErr       error
		wantDiscovery int64
		wantJWKS      int64
	}{
		{name: "openid configuration", wantDiscovery: 1, wantJWKS: 1},
		{
			name:          "RFC 8414 metadata",
			setup:         func(is *issuer) { is.metadataPath = "/.well-known/oauth-authorization-server" },
			wantDiscovery: 2, wantJWKS: 1,
		},
		{name: "JWKSURL skips discovery", jwksURL: true, wantDiscovery: 0, wantJWKS: 1},
		{
			name:          "issuer mismatch",
			setup:         func(is *issuer) { is.metadataIssue = "https://evil.example" },
			wantErr:       resource.ErrKeysUnavailable,
			wantDiscovery: 1, wantJWKS: 0,
		},
		{
			name:          "issuer with trailing slash",
			setup:         func(is *issuer) { is.metadataIssue = is.URL + "/" },
			wantErr:       resource.ErrKeysUnavailable,
			wantDiscovery: 1, wantJWKS: 0,
		},
		{
			name:          "no jwks_uri",
			setup:         func(is *issuer) { is.noJWKSURI = true },
			wantErr:       resource.ErrKeysUnavailable,
			wantDiscovery: 1, wantJWKS: 0,
		},
		{
			name:          "no metadata",
			setup:         func(is *issuer) { is.metadataPath = "/nowhere" },
			wantErr:       resource.ErrKeysUnavailable,
			wantDiscovery: 2, wantJWKS: 0,
		},
		{name: "empty JWKS", setup: func(is *issuer) { is.keys = nil }, wantErr: resource.ErrKeysUnavailable, wantDiscovery: 1, wantJWKS: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := newIssuer(t, key)
			if tc.setup != nil {
				is.set(tc.setup)
			}
			v := is.verifier(t, nil, func(c *resource.Config) {
				if tc.jwksURL {
					c.JWKSURL = is.URL + "/jwks"
				}
			})
			p, err := v.Verify(t.Context(), is.token(t, key, time.Now()))
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatalf("got %v, want nil", err)
			case tc.wantErr == nil && p.Subject != "alice":
				t.Errorf("got subject %q, want %q", p.Subject, "alice")
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
				t.Fatalf("got %v, want %v", err, tc.wantErr)
			case tc.wantErr != nil && errors.Is(err, resource.ErrInvalidToken):
				t.Errorf("got %v, want an error not wrapping ErrInvalidToken", err)
			}
			wantHits(t, "discovery", &is.discoveryHits, tc.wantDiscovery)
			wantHits(t, "JWKS", &is.jwksHits, tc.wantJWKS)
		})
	}
}

func TestVerifierRefetchesForUnknownKey(t *testing.T) {
	oldKey, newKey := generateKey(t, jose.ES256), generateKey(t, jose.ES256)
	is := newIssuer(t, oldKey)
	clk := newClock()
	v := is.verifier(t, clk, func(c *resource.Config) { c.MinRefetchInterval = 10 * time.Second })
	if _, err := v.Verify(t.Context(), is.token(t, oldKey, clk.Now())); err != nil {
		t.Fatalf("old key: got %v, want nil", err)
	}
	wantHits(t, "JWKS", &is.jwksHits, 1)

	is.publish(oldKey, newKey)
	fresh := is.token(t, newKey, clk.Now())
	clk.Advance(9 * time.Second)
	if _, err := v.Verify(t.Context(), fresh); !errors.Is(err, jose.ErrUnknownKey) {
		t.Fatalf("new key within MinRefetchInterval: got %v, want %v", err, jose.ErrUnknownKey)
	}
	wantHits(t, "JWKS", &is.jwksHits, 1)

	clk.Advance(2 * time.Second)
	p, err := v.Verify(t.Context(), fresh)
	if err != nil {
		t.Fatalf("new key after MinRefetchInterval: got %v, want nil", err)
	}
	if p.Subject != "alice" {
		t.Errorf("got subject %q, want %q", p.Subject, "alice")
	}
	wantHits(t, "JWKS", &is.jwksHits, 2)
}

func TestVerifierRateLimitsRefetch(t *testing.T) {
	known := generateKey(t, jose.ES256)
	is := newIssuer(t, known)
	v := is.verifier(t, nil, func(c *resource.Config) { c.MinRefetchInterval = time.Hour })
	now := time.Now()
	const n = 20
	forged := make([]string, n) // each under its own unknown kid
	for i := range forged {
		forged[i] = is.token(t, generateKey(t, jose.ES256), now)
	}

	var wg sync.WaitGroup
	for _, raw := range forged {
		wg.Go(func() {
			if _, err := v.Verify(t.Context(), raw); !errors.Is(err, jose.ErrUnknownKey) {
				t.Errorf("got %v, want %v", err, jose.ErrUnknownKey)
			}
		})
	}
	wg.Wait()
	for _, raw := range forged {
		if _, err := v.Verify(t.Context(), raw); !errors.Is(err, jose.ErrUnknownKey) {
			t.Errorf("got %v, want %v", err, jose.ErrUnknownKey)
		}
	}
	if _, err := v.Verify(t.Context(), is.token(t, known, now)); err != nil {
		t.Errorf("known key: got %v, want nil", err)
	}
	// Concurrent first uses fold into one fetch; one that starts as
	// another ends may make a second. No more may follow.
	if hits := is.jwksHits.Load(); hits < 1 || hits > 2 {
		t.Errorf("got %d JWKS requests for %d unknown kids, want 1 or 2", hits, 2*n)
	}
}

func TestVerifierFoldsConcurrentFetches(t *testing.T) {
	key := generateKey(t, jose.ES256)
	is := newIssuer(t, key)
	gate := make(chan struct{})
	is.set(func(is *issuer) { is.gate = gate })
	v := is.verifier(t, nil, nil)
	raw := is.token(t, key, time.Now())

	const n = 32
	var started, done sync.WaitGroup
	started.Add(n)
	for range n {
		done.Go(func() {
			started.Done()
			if _, err := v.Verify(t.Context(), raw); err != nil {
				t.Errorf("got %v, want nil", err)
			}
		})
	}
	started.Wait()
	// Hold the one fetch open until every caller has had time to join it.
	time.Sleep(100 * time.Millisecond)
	close(gate)
	done.Wait()
	wantHits(t, "discovery", &is.discoveryHits, 1)
	wantHits(t, "JWKS", &is.jwksHits, 1)
}

// TestVerifierSharedFetchOutlivesCaller checks that the JWKS fetch that
// concurrent callers share belongs to none of them: the caller that started
// it going away does not fail the others, and a caller whose context ends
// stops waiting.
func TestVerifierSharedFetchOutlivesCaller(t *testing.T) {
	key := generateKey(t, jose.ES256)
	is := newIssuer(t, key)
	gate := make(chan struct{})
	is.set(func(is *issuer) { is.gate = gate })
	v := is.verifier(t, nil, func(c *resource.Config) { c.JWKSURL = is.URL + "/jwks" })
	raw := is.token(t, key, time.Now())

	// The first caller starts the fetch, which the issuer holds open.
	first, cancelFirst := context.WithCancel(t.Context())
	firstDone := make(chan error, 1)
	go func() { _, err := v.Verify(first, raw); firstDone <- err }()
	eventually(t, "the JWKS request", func() bool { return is.jwksHits.Load() == 1 })

	// A second caller joins it, and a third that gives up.
	secondDone := make(chan error, 1)
	go func() { _, err := v.Verify(t.Context(), raw); secondDone <- err }()
	third, cancelThird := context.WithCancel(t.Context())
	thirdDone := make(chan error, 1)
	go func() { _, err := v.Verify(third, raw); thirdDone <- err }()
	time.Sleep(50 * time.Millisecond) // let them join the fetch

	cancelFirst()
	cancelThird()
	for name, done := range map[string]chan error{"first": firstDone, "third": thirdDone} {
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("%s caller: got %v, want %v", name, err, context.Canceled)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s caller still waiting after its context ended", name)
		}
	}

	close(gate)
	if err := <-secondDone; err != nil {
		t.Errorf("second caller: got %v, want nil", err)
	}
	wantHits(t, "JWKS", &is.jwksHits, 1)
}

func TestVerifierServesCachedKeysWhileIssuerDown(t *testing.T) {
	key := generateKey(t, jose.ES256)
	is := newIssuer(t, key)
	clk := newClock()
	// Without the token cache every Verify needs the keys.
	v := is.verifier(t, clk, func(c *resource.Config) { c.CacheSize = -1 })
	raw := is.token(t, key, clk.Now())
	if _, err := v.Verify(t.Context(), raw); err != nil {
		t.Fatalf("issuer up: got %v, want nil", err)
	}

	is.down.Store(true)
	clk.Advance(6 * time.Minute) // past RefreshInterval: a refresh is due
	if _, err := v.Verify(t.Context(), raw); err != nil {
		t.Fatalf("issuer down, keys stale: got %v, want nil", err)
	}
	eventually(t, "a background refresh", func() bool { return is.discoveryHits.Load() >= 2 })
	if _, err := v.Verify(t.Context(), is.token(t, key, clk.Now())); err != nil {
		t.Fatalf("issuer down, refresh failed: got %v, want nil", err)
	}

	// An unknown kid makes the Verifier try the issuer again; the token is
	// refused as invalid and the cached keys stay.
	clk.Advance(time.Minute)
	before := is.discoveryHits.Load()
	stranger := is.token(t, generateKey(t, jose.ES256), clk.Now())
	if _, err := v.Verify(t.Context(), stranger); !errors.Is(err, jose.ErrUnknownKey) {
		t.Errorf("unknown kid, issuer down: got %v, want %v", err, jose.ErrUnknownKey)
	}
	if got := is.discoveryHits.Load(); got == before {
		t.Errorf("got no request for an unknown kid, want a refetch attempt")
	}
	if _, err := v.Verify(t.Context(), is.token(t, key, clk.Now())); err != nil {
		t.Fatalf("issuer down, refetch failed: got %v, want nil", err)
	}
}

func TestVerifierIssuerDownFromStart(t *testing.T) {
	key := generateKey(t, jose.ES256)
	tests := []struct {
		name  string
		setup func(is *issuer) string // returns the issuer URL to configure
	}{
		{name: "HTTP 503", setup: func(is *issuer) string { is.down.Store(true); return is.URL }},
		{name: "connection refused", setup: func(*issuer) string {
			srv := httptest.NewServer(http.NotFoundHandler())
			srv.Close()
			return srv.URL
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			iss := tc.setup(newIssuer(t, key))
			v, err := resource.NewVerifier(resource.Config{Issuer: iss, Audience: []string{testAudience}})
			if err != nil {
				t.Fatalf("NewVerifier: %v", err)
			}
			raw := mint(t, key, iss, time.Now(), nil)
			for range 2 { // and again: a failed fetch is not cached
				p, err := v.Verify(t.Context(), raw)
				if !errors.Is(err, resource.ErrKeysUnavailable) {
					t.Fatalf("got (%v, %v), want %v", p, err, resource.ErrKeysUnavailable)
				}
				if errors.Is(err, resource.ErrInvalidToken) {
					t.Errorf("got %v, want an error not wrapping ErrInvalidToken", err)
				}
			}
		})
	}
}

func TestVerifierIssuerRecovers(t *testing.T) {
	key := generateKey(t, jose.ES256)
	is := newIssuer(t, key)
	is.down.Store(true)
	v := is.verifier(t, nil, nil)
	raw := is.token(t, key, time.Now())
	if _, err := v.Verify(t.Context(), raw); !errors.Is(err, resource.ErrKeysUnavailable) {
		t.Fatalf("issuer down: got %v, want %v", err, resource.ErrKeysUnavailable)
	}
	is.down.Store(false)
	if _, err := v.Verify(t.Context(), raw); err != nil {
		t.Fatalf("issuer back: got %v, want nil", err)
	}
}

func TestVerifierKeyRotation(t *testing.T) {
	oldKey, newKey := generateKey(t, jose.ES256), generateKey(t, jose.RS256)
	is := newIssuer(t, oldKey)
	clk := newClock()
	v := is.verifier(t, clk, nil)
	oldToken := is.token(t, oldKey, clk.Now())
	if _, err := v.Verify(t.Context(), oldToken); err != nil {
		t.Fatalf("before rotation: got %v, want nil", err)
	}

	// The issuer publishes a new key next to the old one and signs with it.
	is.publish(newKey, oldKey)
	clk.Advance(time.Minute)
	tests := []struct {
		name  string
		token string
	}{
		{name: "new key", token: is.token(t, newKey, clk.Now())},
		{name: "old key, seen before", token: oldToken},
		{name: "old key, not seen before", token: is.token(t, oldKey, clk.Now().Add(-30*time.Second))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := v.Verify(t.Context(), tc.token); err != nil {
				t.Errorf("got %v, want nil", err)
			}
		})
	}
	wantHits(t, "JWKS", &is.jwksHits, 2)

	clk.Advance(time.Hour) // oldToken expired 1m ago
	if _, err := v.Verify(t.Context(), oldToken); !errors.Is(err, jose.ErrExpired) {
		t.Errorf("old token after expiry: got %v, want %v", err, jose.ErrExpired)
	}
}

func TestVerifierCache(t *testing.T) {
	key := generateKey(t, jose.ES256)
	tests := []struct {
		name      string
		cacheSize int
		wantSame  bool
	}{
		{name: "default size", cacheSize: 0, wantSame: true},
		{name: "size 1", cacheSize: 1, wantSame: true},
		{name: "off", cacheSize: -1, wantSame: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			v := newStaticVerifier(t, key, func(c *resource.Config) { c.Now, c.CacheSize = clk.Now, tc.cacheSize })
			raw := mint(t, key, staticIssuer, clk.Now(), nil)
			first, err := v.Verify(t.Context(), raw)
			if err != nil {
				t.Fatalf("first: got %v, want nil", err)
			}
			second, err := v.Verify(t.Context(), raw)
			if err != nil {
				t.Fatalf("second: got %v, want nil", err)
			}
			// A verified token gives a new *Principal; a cached one, the
			// same one again.
			if got := first == second; got != tc.wantSame {
				t.Errorf("got same principal %v, want %v", got, tc.wantSame)
			}
		})
	}
}

func TestVerifierCacheExpiry(t *testing.T) {
	key := generateKey(t, jose.ES256)
	clk := newClock()
	v := newStaticVerifier(t, key, func(c *resource.Config) { c.Now = clk.Now })
	raw := mint(t, key, staticIssuer, clk.Now(), func(c *jose.Claims) {
		c.Expiry = jose.NewNumericDate(clk.Now().Add(time.Minute))
	})
	if _, err := v.Verify(t.Context(), raw); err != nil {
		t.Fatalf("fresh: got %v, want nil", err)
	}
	clk.Advance(2 * time.Minute) // past exp and leeway
	if p, err := v.Verify(t.Context(), raw); !errors.Is(err, jose.ErrExpired) {
		t.Fatalf("expired: got (%v, %v), want %v", p, err, jose.ErrExpired)
	}
}

func TestVerifierCacheEvicts(t *testing.T) {
	key := generateKey(t, jose.ES256)
	clk := newClock()
	v := newStaticVerifier(t, key, func(c *resource.Config) { c.Now, c.CacheSize = clk.Now, 1 })
	a := mint(t, key, staticIssuer, clk.Now(), func(c *jose.Claims) { c.ID = "a" })
	b := mint(t, key, staticIssuer, clk.Now(), func(c *jose.Claims) { c.ID = "b" })
	first, err := v.Verify(t.Context(), a)
	if err != nil {
		t.Fatalf("a: got %v, want nil", err)
	}
	if _, err := v.Verify(t.Context(), b); err != nil {
		t.Fatalf("b: got %v, want nil", err)
	}
	again, err := v.Verify(t.Context(), a)
	if err != nil {
		t.Fatalf("a again: got %v, want nil", err)
	}
	if first == again {
		t.Errorf("got a's principal from a cache of size 1 holding b, want it verified again")
	}
}

func TestVerifierRejects(t *testing.T) {
	key, other := generateKey(t, jose.ES256), generateKey(t, jose.ES256)
	now := time.Now()
	v := newStaticVerifier(t, key, nil)
	tests := []struct {
		name    string
		token   string
		wantErr error
	}{
		{name: "wrong issuer", token: mint(t, key, "https://evil.example", now, nil), wantErr: jose.ErrIssuer},
		{name: "wrong audience", token: mint(t, key, staticIssuer, now, func(c *jose.Claims) { c.Audience = jose.Audience{"x"} }), wantErr: jose.ErrAudience},
		{name: "expired", token: mint(t, key, staticIssuer, now, func(c *jose.Claims) { c.Expiry = jose.NewNumericDate(now.Add(-time.Hour)) }), wantErr: jose.ErrExpired},
		{name: "unknown key", token: mint(t, other, staticIssuer, now, nil), wantErr: jose.ErrUnknownKey},
		{name: "garbage", token: "garbage", wantErr: jose.ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := v.Verify(t.Context(), tc.token)
			if !errors.Is(err, tc.wantErr) || !errors.Is(err, resource.ErrInvalidToken) {
				t.Errorf("got (%v, %v), want %v wrapping ErrInvalidToken", p, err, tc.wantErr)
			}
		})
	}
}

// keycloakClaims is the shape of a Keycloak access token.
type keycloakClaims struct {
	jose.Claims
	Email       string `json:"email,omitempty"`
	RealmAccess any    `json:"realm_access,omitempty"`
}

// withClaims returns claims as a JSON object with extra added.
func withClaims(t testing.TB, claims any, extra map[string]any) map[string]any {
	t.Helper()
	data, err := json.Marshal(claims)
	if err != nil {
		t.Fatalf("marshal claims: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("unmarshal claims: %v", err)
	}
	maps.Copy(m, extra)
	return m
}

func TestVerifierPrincipal(t *testing.T) {
	key := generateKey(t, jose.ES256)
	now := time.Now().Truncate(time.Second)
	base := jose.Claims{
		Issuer: staticIssuer, Subject: "f81d4fae", Audience: jose.Audience{testAudience, "account"},
		Expiry: jose.NewNumericDate(now.Add(time.Hour)), IssuedAt: jose.NewNumericDate(now),
		ID: "jti-1", ClientID: "orders-web", Scope: "openid orders:read", SessionID: "sid-1",
		Username: "alice", Roles: []string{"top-level"},
	}
	tests := []struct {
		name         string
		cfg          func(*resource.Config)
		realmAccess  any
		extra        map[string]any // more claims
		wantUsername string
		wantRoles    []string
	}{
		{name: "defaults", wantUsername: "alice", wantRoles: []string{"top-level"}},
		{
			name:         "roles claim named roles",
			cfg:          func(c *resource.Config) { c.RolesClaim = "roles" },
			wantUsername: "alice", wantRoles: []string{"top-level"},
		},
		{
			name:         "Keycloak realm roles and email",
			cfg:          func(c *resource.Config) { c.RolesClaim, c.UsernameClaim = "realm_access.roles", "email" },
			realmAccess:  map[string]any{"roles": []string{"admin", "offline_access"}},
			wantUsername: "alice@example.com", wantRoles: []string{"admin", "offline_access"},
		},
		{
			name:         "nested roles as a space-separated string",
			cfg:          func(c *resource.Config) { c.RolesClaim = "realm_access.roles" },
			realmAccess:  map[string]any{"roles": "admin auditor"},
			wantUsername: "alice", wantRoles: []string{"admin", "auditor"},
		},
		{
			name:         "nested roles missing",
			cfg:          func(c *resource.Config) { c.RolesClaim = "realm_access.roles" },
			wantUsername: "alice", wantRoles: nil,
		},
		{
			name:         "claim with an empty name",
			extra:        map[string]any{"": "mallory"},
			wantUsername: "alice", wantRoles: []string{"top-level"},
		},
		{
			name:         "nested path through a non-object",
			cfg:          func(c *resource.Config) { c.RolesClaim = "realm_access.roles" },
			realmAccess:  "admin",
			wantUsername: "alice", wantRoles: nil,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := newStaticVerifier(t, key, tc.cfg)
			raw := sign(t, key, withClaims(t, keycloakClaims{Claims: base, Email: "alice@example.com", RealmAccess: tc.realmAccess}, tc.extra))
			got, err := v.Verify(t.Context(), raw)
			if err != nil {
				t.Fatalf("got %v, want nil", err)
			}
			want := &resource.Principal{
				Issuer: staticIssuer, Subject: "f81d4fae", Username: tc.wantUsername, ClientID: "orders-web",
				Roles: tc.wantRoles, Scopes: []string{"openid", "orders:read"}, Audience: []string{testAudience, "account"},
				SessionID: "sid-1", TokenID: "jti-1", KeyID: key.ID(), Expiry: now.Add(time.Hour), IssuedAt: now, Token: raw,
			}
			gotJSON, _ := json.Marshal(got)
			wantJSON, _ := json.Marshal(want)
			if string(gotJSON) != string(wantJSON) {
				t.Errorf("got %s, want %s", gotJSON, wantJSON)
			}
		})
	}
}

// TestVerifierAccessTokenTypes: by default only "at+jwt" passes; a server
// whose access tokens are typed "JWT" needs the opt-in, which adds that type
// and nothing else.
func TestVerifierAccessTokenTypes(t *testing.T) {
	key := generateKey(t, jose.ES256)
	now := time.Now()
	claims := jose.Claims{Issuer: staticIssuer, Subject: "alice", Audience: jose.Audience{testAudience},
		Expiry: jose.NewNumericDate(now.Add(time.Hour)), IssuedAt: jose.NewNumericDate(now)}
	signTyped := func(typ string) string {
		raw, err := jose.Sign(key, typ, claims)
		if err != nil {
			t.Fatalf("Sign: %v", err)
		}
		return raw
	}
	tests := []struct {
		name   string
		types  []string
		typ    string
		accept bool
	}{
		{name: "default_at_jwt", typ: "at+jwt", accept: true},
		{name: "default_media_type", typ: "application/at+jwt", accept: true},
		{name: "default_refuses_jwt", typ: "JWT"},
		{name: "default_refuses_secevent", typ: jose.TypeSET},
		{name: "default_refuses_empty", typ: ""},
		{name: "opt_in_jwt", types: []string{"at+jwt", "JWT"}, typ: "JWT", accept: true},
		{name: "opt_in_jwt_lowercase", types: []string{"at+jwt", "JWT"}, typ: "jwt", accept: true},
		{name: "opt_in_keeps_at_jwt", types: []string{"at+jwt", "JWT"}, typ: "at+jwt", accept: true},
		{name: "opt_in_refuses_others", types: []string{"at+jwt", "JWT"}, typ: jose.TypeSET},
		{name: "opt_in_refuses_empty", types: []string{"at+jwt", "JWT"}, typ: ""},
		{name: "jwt_only_refuses_at_jwt", types: []string{"JWT"}, typ: "at+jwt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newStaticVerifier(t, key, func(c *resource.Config) { c.AccessTokenTypes = tt.types })
			p, err := v.Verify(t.Context(), signTyped(tt.typ))
			if tt.accept && (err != nil || p.Subject != "alice") {
				t.Fatalf("typ %q: got (%+v, %v), want alice", tt.typ, p, err)
			}
			if !tt.accept && !errors.Is(err, jose.ErrType) {
				t.Fatalf("typ %q: got (%+v, %v), want ErrType", tt.typ, p, err)
			}
		})
	}
	if _, err := resource.NewStaticVerifier(resource.Config{Issuer: staticIssuer, Audience: []string{testAudience},
		AccessTokenTypes: []string{""}}, jwks(t, key)); err == nil {
		t.Errorf("got nil error for an empty type in AccessTokenTypes")
	}
}

// TestVerifierOnCacheLookup counts hits and misses through the hook.
func TestVerifierOnCacheLookup(t *testing.T) {
	key := generateKey(t, jose.ES256)
	var hits, misses atomic.Int64
	v := newStaticVerifier(t, key, func(c *resource.Config) {
		c.OnCacheLookup = func(hit bool) {
			if hit {
				hits.Add(1)
			} else {
				misses.Add(1)
			}
		}
	})
	raw := mint(t, key, staticIssuer, time.Now(), nil)
	for range 3 {
		if _, err := v.Verify(t.Context(), raw); err != nil {
			t.Fatal(err)
		}
	}
	v.Verify(t.Context(), "garbage")
	if hits.Load() != 2 || misses.Load() != 2 {
		t.Errorf("got %d hits, %d misses, want 2 and 2", hits.Load(), misses.Load())
	}
}

// TestVerifierReady: not ready while the JWKS was never fetched and cannot
// be; ready once fetched, and still ready when the issuer goes down after.
func TestVerifierReady(t *testing.T) {
	key := generateKey(t, jose.ES256)
	is := newIssuer(t, key)
	is.down.Store(true)
	v := is.verifier(t, nil, nil)
	if err := v.Ready(t.Context()); !errors.Is(err, resource.ErrKeysUnavailable) {
		t.Fatalf("issuer down from start: got %v, want ErrKeysUnavailable", err)
	}
	is.down.Store(false)
	v = is.verifier(t, nil, nil)
	if err := v.Ready(t.Context()); err != nil {
		t.Fatalf("issuer up: got %v, want ready", err)
	}
	hits := is.jwksHits.Load()
	is.down.Store(true)
	if err := v.Ready(t.Context()); err != nil {
		t.Fatalf("issuer down after a fetch: got %v, want ready from the cached keys", err)
	}
	if is.jwksHits.Load() != hits {
		t.Errorf("Ready fetched the JWKS again although it was cached")
	}
	static := newStaticVerifier(t, key, nil)
	if err := static.Ready(t.Context()); err != nil {
		t.Errorf("static verifier: got %v, want ready", err)
	}
}
