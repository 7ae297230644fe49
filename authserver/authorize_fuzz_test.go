package authserver_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

// FuzzAuthorize sends arbitrary authorization requests, as a query or as a
// form body, with an arbitrary session cookie. The server must never fail
// with 5xx or panic, and must never redirect anywhere but to the one
// registered redirect URI.
func FuzzAuthorize(f *testing.F) {
	e := newFlowEnv(f)
	challenge := s256(oauth2.GenerateVerifier())
	valid := url.Values{"client_id": {spaClient}, "redirect_uri": {e.callback}, "response_type": {"code"},
		"scope": {"openid profile"}, "state": {"s"}, "nonce": {"n"},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}}.Encode()
	for _, seed := range []string{
		valid,
		valid + "&prompt=none",
		valid + "&prompt=login+consent&max_age=0",
		valid + "&max_age=-1",
		valid + "&max_age=99999999999999999999",
		valid + "&client_id=web",
		valid + "&request_uri=urn:x",
		strings.Replace(valid, "S256", "plain", 1),
		"client_id=web&redirect_uri=" + url.QueryEscape(e.callback) + "&response_type=code",
		"client_id=spa&redirect_uri=https%3A%2F%2Fevil.example&response_type=code",
		"client_id=%zz",
		"client_id=spa;redirect_uri=x",
		"",
		"state=" + strings.Repeat("a", 5000),
	} {
		f.Add(seed, false, "")
		f.Add(seed, true, "")
	}
	f.Add(valid, false, "gatehouse-session=AAAA")
	f.Fuzz(func(t *testing.T, query string, post bool, cookie string) {
		var req *http.Request
		if post {
			req = httptest.NewRequest(http.MethodPost, "/oauth2/authorize", strings.NewReader(query))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		} else {
			req = httptest.NewRequest(http.MethodGet, "/oauth2/authorize", nil)
			req.URL.RawQuery = query
		}
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		rec := httptest.NewRecorder()
		e.handler.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("got %d for %q, want no server error; body:\n%s", rec.Code, query, rec.Body)
		}
		if loc := rec.Header().Get("Location"); loc != "" && !strings.HasPrefix(loc, e.callback+"?") {
			t.Fatalf("redirected to %q for %q, want only the registered redirect URI", loc, query)
		}
	})
}
