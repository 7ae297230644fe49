package authserver_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/accounts"
)

// FuzzIntrospectAndRevoke sends arbitrary bodies, with and without client
// authentication, to the introspection and revocation endpoints: the answer
// is never a 5xx, and a 200 from introspection is a JSON object saying
// whether the token is active. Requests go straight to the handler, so a
// panic fails the test instead of being swallowed by net/http.
//
// Fuzzing instruments the SQLite store too, whose coverage changes with
// every lookup; run with a short minimization, or the engine spends its time
// minimizing: go test -fuzz FuzzIntrospectAndRevoke -fuzzminimizetime 20x ./authserver
func FuzzIntrospectAndRevoke(f *testing.F) {
	e := newTokenEnv(f, openSQLite(f), nil)
	e.client(accounts.ClientSpec{ID: "web", Grants: []string{"password", "refresh_token"}, Scopes: []string{"orders"}})
	e.client(accounts.ClientSpec{ID: "rs", Grants: []string{"client_credentials"}})
	e.user("alice")
	tok := e.login("web", "alice")
	for _, body := range []string{
		"token=" + tok.AccessToken,
		"token=" + tok.RefreshToken + "&token_type_hint=refresh_token",
		"token=" + tok.AccessToken + "&token_type_hint=id_token",
		"token=" + tok.AccessToken[:len(tok.AccessToken)/2],
		"token=a.b.c", "token=a..", "token=..", "token=e30.e30.e30", "token=%zz", "token=a&token=b",
		"token=", "", "&&&", "client_id=rs&client_secret=x&token=y", "token=" + strings.Repeat("A", 300),
	} {
		f.Add(body, true)
		f.Add(body, false)
	}
	f.Fuzz(func(t *testing.T, body string, auth bool) {
		for _, path := range []string{"/oauth2/introspect", "/oauth2/revoke"} {
			req := httptest.NewRequest(http.MethodPost, e.URL+path, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if auth {
				req.SetBasicAuth("rs", url.QueryEscape(e.secrets["rs"]))
			}
			rec := httptest.NewRecorder()
			e.Handler.ServeHTTP(rec, req) // a panic fails the test
			r, err := decode(rec.Result())
			if err != nil {
				t.Fatalf("POST %s %q: %v", path, body, err)
			}
			if r.status >= 500 {
				t.Fatalf("POST %s %q: got %d %s, want no 5xx", path, body, r.status, r.raw)
			}
			if path == "/oauth2/introspect" && r.status == http.StatusOK {
				if _, ok := r.body["active"].(bool); !ok {
					t.Fatalf("POST %s %q: got 200 %s, want an active member", path, body, r.raw)
				}
			}
		}
	})
}
