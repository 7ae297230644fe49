package authserver

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/accounts"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// The endpoints the load harness measures (go run ./bench), called on the
// handler directly: no network, no load generator, one request at a time,
// on a SQLite store. Compare their instruction counts, which this machine's
// noise does not move (see docs/benchmarks.md).

// benchFixture is a fixture that discards its log, as a server in
// production writes it elsewhere.
func benchFixture(b *testing.B) *fixture {
	return newFixture(b, fixtureOptions{config: func(c *Config) { c.Logger = slog.New(slog.DiscardHandler) }})
}

// benchRequest is a form POST to path with the client's Basic credentials.
func benchRequest(path, client, secret string, form url.Values) *http.Request {
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.SetBasicAuth(client, secret)
	return r
}

// serveBench serves the request built by next, b.N times, and fails unless
// each answer is 200.
func serveBench(b *testing.B, h http.Handler, next func() *http.Request) {
	b.Helper()
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, next())
		if w.Code != http.StatusOK {
			b.Fatalf("got %d %s, want 200", w.Code, w.Body)
		}
	}
}

func BenchmarkIntrospectJWT(b *testing.B) {
	f := benchFixture(b)
	secret := f.addClient(accounts.ClientSpec{ID: "cc", Grants: []string{oauth.GrantClientCredentials}})
	rs := f.addClient(accounts.ClientSpec{ID: "rs", Grants: []string{oauth.GrantClientCredentials}})
	token := f.clientToken("cc", secret)
	form := url.Values{"token": {token}}
	serveBench(b, f.srv, func() *http.Request { return benchRequest(pathIntrospect, "rs", rs, form) })
}

func BenchmarkClientCredentials(b *testing.B) {
	for _, format := range []string{store.FormatJWT, store.FormatOpaque} {
		b.Run(format, func(b *testing.B) {
			f := benchFixture(b)
			secret := f.addClient(accounts.ClientSpec{ID: "cc", Grants: []string{oauth.GrantClientCredentials},
				AccessTokenFormat: format})
			form := url.Values{"grant_type": {oauth.GrantClientCredentials}}
			serveBench(b, f.srv, func() *http.Request { return benchRequest(pathToken, "cc", secret, form) })
		})
	}
}

func BenchmarkRefresh(b *testing.B) {
	f := benchFixture(b)
	secret := f.addClientWithRefresh("cli")
	f.addUser("alice", "alice-password")
	rt := f.passwordGrant("cli", secret, "alice", "alice-password").str("refresh_token")
	b.ReportAllocs()
	for b.Loop() { // each refresh presents the token the previous one returned
		w := httptest.NewRecorder()
		f.srv.ServeHTTP(w, benchRequest(pathToken, "cli", secret, url.Values{"grant_type": {oauth.GrantRefreshToken}, "refresh_token": {rt}}))
		var resp struct {
			RefreshToken string `json:"refresh_token"`
		}
		if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &resp) != nil {
			b.Fatalf("got %d %s, want 200", w.Code, w.Body)
		}
		rt = resp.RefreshToken
	}
}
