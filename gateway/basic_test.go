package gateway

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/resource"
)

type staticVerifier struct{}

func (staticVerifier) Verify(_ context.Context, raw string) (*resource.Principal, error) {
	return &resource.Principal{Subject: "u1", Token: raw, Expiry: time.Now().Add(time.Hour)}, nil
}

// The password grant the gateway makes for Basic credentials names the end
// user's address, so the authorization server throttles per end user.
func TestBasicSendsTheEndUserAddress(t *testing.T) {
	var mu sync.Mutex
	var forms []url.Values
	as := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		mu.Lock()
		forms = append(forms, r.PostForm)
		mu.Unlock()
		oauth.WriteJSON(w, 200, oauth.TokenResponse{AccessToken: "at", TokenType: "Bearer", ExpiresIn: 300})
	}))
	defer as.Close()
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer upstream.Close()
	g, err := New(Config{Issuer: as.URL, TokenURL: as.URL, ClientID: "gateway", ClientSecret: "gateway-secret",
		Verifier: staticVerifier{}, Routes: []Route{{Prefix: "/api", Upstream: upstream.URL}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ remote, user, want string }{
		{"192.0.2.7:4711", "alice", "192.0.2.7"},
		{"[2001:db8::5]:4711", "bob", "2001:db8::5"},
		{"[::ffff:192.0.2.8]:1", "carol", "192.0.2.8"},
		{"@", "dave", ""}, // a Unix socket peer: nothing to send
	} {
		req := httptest.NewRequest(http.MethodGet, "/api/x", nil)
		req.RemoteAddr = tt.remote
		req.SetBasicAuth(tt.user, "pw-"+tt.user)
		rec := httptest.NewRecorder()
		g.ServeHTTP(rec, req)
		if rec.Code != 200 {
			t.Fatalf("%s: got %d, want 200", tt.user, rec.Code)
		}
		mu.Lock()
		last := forms[len(forms)-1]
		mu.Unlock()
		if got := last.Get(oauth.ParamEndUserIP); got != tt.want || last.Has(oauth.ParamEndUserIP) != (tt.want != "") {
			t.Errorf("%s from %s: got %s=%q, want %q", tt.user, tt.remote, oauth.ParamEndUserIP, got, tt.want)
		}
	}
}
