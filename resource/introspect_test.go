package resource

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// introspectionServer answers RFC 7662 requests from a table of tokens.
func introspectionServer(t *testing.T, answers map[string]map[string]any) (*httptest.Server, *atomic.Int64) {
	var calls atomic.Int64
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id, secret, ok := r.BasicAuth(); !ok || id != "orders" || secret != "orders-secret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		calls.Add(1)
		r.ParseForm()
		ans, ok := answers[r.PostForm.Get("token")]
		if !ok {
			ans = map[string]any{"active": false}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(ans)
	}))
	t.Cleanup(s.Close)
	return s, &calls
}

func TestIntrospector(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	exp := now.Add(5 * time.Minute).Unix()
	srv, calls := introspectionServer(t, map[string]map[string]any{
		"good": {"active": true, "sub": "alice", "client_id": "web", "scope": "orders read", "iss": "https://as", "aud": "demo-api",
			"exp": exp, "username": "alice", "roles": []string{"admin"}, "act": map[string]any{"sub": "billing"}},
		"other-iss": {"active": true, "sub": "alice", "iss": "https://evil", "aud": "demo-api", "exp": exp},
		"other-aud": {"active": true, "sub": "alice", "iss": "https://as", "aud": []string{"billing"}, "exp": exp},
		"no-exp":    {"active": true, "sub": "alice", "iss": "https://as", "aud": "demo-api"},
	})
	in, err := NewIntrospector(IntrospectionConfig{IntrospectionURL: srv.URL, ClientID: "orders", ClientSecret: "orders-secret",
		Issuer: "https://as", Audience: []string{"demo-api"}, CacheTTL: time.Minute, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	p, err := in.Verify(context.Background(), "good")
	if err != nil || p.Subject != "alice" || p.Username != "alice" || !p.HasRole("admin") || !p.HasScope("read") || p.ClientID != "web" ||
		p.Actor != "billing" {
		t.Fatalf("got %+v, %v, want alice with role admin and scope read, billing acting", p, err)
	}
	in.Verify(context.Background(), "good")
	if n := calls.Load(); n != 1 {
		t.Fatalf("got %d introspection calls for two verifications, want 1 (cached)", n)
	}
	mu.Lock()
	now = now.Add(61 * time.Second) // past CacheTTL: asks again
	mu.Unlock()
	in.Verify(context.Background(), "good")
	if n := calls.Load(); n != 2 {
		t.Fatalf("got %d calls after the cache TTL, want 2", n)
	}
	for _, tok := range []string{"unknown", "other-iss", "other-aud", "no-exp", ""} {
		if _, err := in.Verify(context.Background(), tok); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("token %q: got %v, want ErrInvalidToken", tok, err)
		}
	}
	before := calls.Load()
	in.Verify(context.Background(), "unknown")
	if calls.Load() != before+1 {
		t.Fatalf("got an inactive answer served from cache, want inactive answers never cached")
	}
	mu.Lock()
	now = time.Unix(exp, 0) // the token itself expired
	mu.Unlock()
	if _, err := in.Verify(context.Background(), "good"); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("got %v for an expired token, want ErrInvalidToken", err)
	}
}

// TestIntrospectorRefusesOtherTokenKinds: an active answer for a refresh
// token, or for a token bound to a proof of possession, is not a bearer
// access token.
func TestIntrospectorRefusesOtherTokenKinds(t *testing.T) {
	exp := time.Now().Add(5 * time.Minute).Unix()
	base := func(extra map[string]any) map[string]any {
		m := map[string]any{"active": true, "sub": "alice", "iss": "https://as", "aud": "demo-api", "exp": exp}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name   string
		answer map[string]any
		accept bool
	}{
		{name: "no_kind", answer: base(nil), accept: true},
		{name: "bearer", answer: base(map[string]any{"token_type": "Bearer"}), accept: true},
		{name: "bearer_lowercase", answer: base(map[string]any{"token_type": "bearer"}), accept: true},
		{name: "access_token_use", answer: base(map[string]any{"token_type": "Bearer", "token_use": "access_token"}), accept: true},
		{name: "refresh_token_use", answer: base(map[string]any{"token_use": "refresh_token"})},
		{name: "refresh_token_type", answer: base(map[string]any{"token_type": "refresh_token"})},
		{name: "dpop", answer: base(map[string]any{"token_type": "DPoP"})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := introspectionServer(t, map[string]map[string]any{"tok": tt.answer})
			in, err := NewIntrospector(IntrospectionConfig{IntrospectionURL: srv.URL, ClientID: "orders", ClientSecret: "orders-secret"})
			if err != nil {
				t.Fatal(err)
			}
			p, err := in.Verify(t.Context(), "tok")
			if tt.accept && err != nil || !tt.accept && !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("got (%+v, %v), want accepted %v", p, err, tt.accept)
			}
		})
	}
}

func TestIntrospectorOnCacheLookup(t *testing.T) {
	exp := time.Now().Add(5 * time.Minute).Unix()
	srv, calls := introspectionServer(t, map[string]map[string]any{"tok": {"active": true, "sub": "alice", "exp": exp}})
	var hits, misses atomic.Int64
	in, err := NewIntrospector(IntrospectionConfig{IntrospectionURL: srv.URL, ClientID: "orders", ClientSecret: "orders-secret",
		OnCacheLookup: func(hit bool) {
			if hit {
				hits.Add(1)
			} else {
				misses.Add(1)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := in.Verify(t.Context(), "tok"); err != nil {
			t.Fatal(err)
		}
	}
	if hits.Load() != 2 || misses.Load() != 1 || calls.Load() != 1 {
		t.Errorf("got %d hits, %d misses, %d calls, want 2, 1, 1", hits.Load(), misses.Load(), calls.Load())
	}
}

func TestIntrospectorServerDown(t *testing.T) {
	srv, _ := introspectionServer(t, nil)
	srv.Close()
	in, _ := NewIntrospector(IntrospectionConfig{IntrospectionURL: srv.URL, ClientID: "orders", ClientSecret: "orders-secret"})
	if _, err := in.Verify(context.Background(), "tok"); !errors.Is(err, ErrKeysUnavailable) || errors.Is(err, ErrInvalidToken) {
		t.Fatalf("got %v, want ErrKeysUnavailable (the token could not be checked)", err)
	}
	wrong, _ := NewIntrospector(IntrospectionConfig{IntrospectionURL: srv.URL, ClientID: "orders", ClientSecret: "wrong"})
	if _, err := wrong.Verify(context.Background(), "tok"); err == nil {
		t.Fatalf("got nil error with a refused introspection")
	}
}

type fixed struct{ name string }

func (f fixed) Verify(context.Context, string) (*Principal, error) {
	return &Principal{Subject: f.name}, nil
}

func TestEither(t *testing.T) {
	e := Either{JWT: fixed{"jwt"}, Opaque: fixed{"opaque"}}
	for raw, want := range map[string]string{"a.b.c": "jwt", "opaque-random-string": "opaque", "a.b": "opaque"} {
		if p, _ := e.Verify(context.Background(), raw); p.Subject != want {
			t.Errorf("%q: got %s, want %s", raw, p.Subject, want)
		}
	}
}
