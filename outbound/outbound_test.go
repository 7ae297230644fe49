package outbound

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/resource"
)

// tokenServer is a token endpoint that counts grants and answers each with a
// fresh token valid for ttl.
type tokenServer struct {
	*httptest.Server
	calls atomic.Int64
	ttl   int64
	last  atomic.Value // url.Values of the last request
}

func newTokenServer(t testing.TB, ttl int64) *tokenServer {
	ts := &tokenServer{ttl: ttl}
	ts.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, secret, ok := r.BasicAuth()
		if !ok || id != "orders" || secret != "s3cret-s3cret-s3cret" {
			oauth.WriteError(w, &oauth.Error{Code: oauth.ErrInvalidClient, Status: http.StatusUnauthorized})
			return
		}
		r.ParseForm()
		ts.last.Store(r.PostForm)
		n := ts.calls.Add(1)
		if r.PostForm.Get("subject_token") == "expired-subject" {
			oauth.WriteError(w, oauth.Errorf(oauth.ErrInvalidRequest, "subject token expired")) // RFC 8693 §2.2.2
			return
		}
		oauth.WriteJSON(w, http.StatusOK, oauth.TokenResponse{AccessToken: fmt.Sprintf("tok-%d", n), TokenType: "Bearer", ExpiresIn: ts.ttl})
	}))
	t.Cleanup(ts.Close)
	return ts
}

// echo is an upstream that returns the Authorization header it received.
func echo(t *testing.T) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"authorization": r.Header.Get("Authorization")})
	}))
	t.Cleanup(s.Close)
	return s
}

func call(t *testing.T, ctx context.Context, rt http.RoundTripper, url string) (string, error) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var got map[string]string
	json.NewDecoder(resp.Body).Decode(&got)
	if req.Header.Get("Authorization") != "" {
		t.Fatalf("the caller's request was modified")
	}
	return got["authorization"], nil
}

func withCaller(token string) context.Context {
	return resource.NewContext(context.Background(), &resource.Principal{Subject: "alice", Token: token})
}

func TestRelay(t *testing.T) {
	up := echo(t)
	got, err := call(t, withCaller("user-token"), &Transport{Source: Relay}, up.URL)
	if err != nil || got != "Bearer user-token" {
		t.Fatalf("got %q, %v, want the caller's token relayed", got, err)
	}
	if _, err := call(t, context.Background(), &Transport{Source: Relay}, up.URL); !errors.Is(err, ErrNoCaller) {
		t.Fatalf("got %v, want ErrNoCaller without a caller", err)
	}
}

func TestClientCredentialsCachesAndRefreshesEarly(t *testing.T) {
	ts := newTokenServer(t, 300)
	now := time.Unix(1_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	src := &ClientCredentials{TokenURL: ts.URL, ClientID: "orders", ClientSecret: "s3cret-s3cret-s3cret", Scopes: []string{"consumers"}, Now: clock}
	up := echo(t)
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if got, err := call(t, context.Background(), &Transport{Source: src}, up.URL); err != nil || got != "Bearer tok-1" {
				t.Errorf("got %q, %v, want Bearer tok-1", got, err)
			}
		}()
	}
	wg.Wait()
	if n := ts.calls.Load(); n != 1 {
		t.Fatalf("got %d grants for 20 concurrent calls, want 1", n)
	}
	if scope := ts.last.Load().(interface{ Get(string) string }).Get("scope"); scope != "consumers" {
		t.Fatalf("got scope %q, want consumers", scope)
	}
	mu.Lock()
	now = now.Add(300*time.Second - 29*time.Second) // inside the early-refresh window
	mu.Unlock()
	if tok, _ := src.Token(context.Background()); tok != "tok-2" || ts.calls.Load() != 2 {
		t.Fatalf("got %q after %d grants, want a new token before expiry", tok, ts.calls.Load())
	}
}

func TestClientCredentialsReportsProtocolErrors(t *testing.T) {
	ts := newTokenServer(t, 300)
	src := &ClientCredentials{TokenURL: ts.URL, ClientID: "orders", ClientSecret: "wrong"}
	_, err := src.Token(context.Background())
	if e, ok := errors.AsType[*oauth.Error](err); !ok || e.Code != oauth.ErrInvalidClient {
		t.Fatalf("got %v, want an *oauth.Error invalid_client", err)
	}
}

func TestExchangeCachesPerCallerToken(t *testing.T) {
	ts := newTokenServer(t, 120)
	ex := &Exchange{TokenURL: ts.URL, ClientID: "orders", ClientSecret: "s3cret-s3cret-s3cret", Audience: "consumers"}
	up := echo(t)
	tr := &Transport{Source: ex}
	a1, _ := call(t, withCaller("alice-token"), tr, up.URL)
	a2, _ := call(t, withCaller("alice-token"), tr, up.URL)
	b1, _ := call(t, withCaller("bob-token"), tr, up.URL)
	if a1 != "Bearer tok-1" || a2 != a1 || b1 != "Bearer tok-2" || ts.calls.Load() != 2 {
		t.Fatalf("got %q %q %q after %d exchanges, want one exchange per caller token", a1, a2, b1, ts.calls.Load())
	}
	form := ts.last.Load().(interface{ Get(string) string })
	if form.Get("grant_type") != oauth.GrantTokenExchange || form.Get("subject_token") != "bob-token" ||
		form.Get("audience") != "consumers" || form.Get("subject_token_type") != TokenTypeAccessToken {
		t.Fatalf("got request %v, want an RFC 8693 exchange of bob's token for audience consumers", form)
	}
	if _, err := ex.Token(withCaller("expired-subject")); err == nil {
		t.Fatalf("got no error for a refused exchange")
	}
	if _, err := ex.Token(context.Background()); !errors.Is(err, ErrNoCaller) {
		t.Fatalf("got %v, want ErrNoCaller", err)
	}
}

func BenchmarkExchangeCacheHit(b *testing.B) {
	ts := newTokenServer(b, 3600)
	ex := &Exchange{TokenURL: ts.URL, ClientID: "orders", ClientSecret: "s3cret-s3cret-s3cret", Audience: "consumers"}
	ctx := withCaller("eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCJ9.a-typical-length-payload-of-a-few-hundred-bytes.signature")
	if _, err := ex.Token(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ex.Token(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
