package authserver_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// FuzzLogout sends arbitrary end-session requests, as a query or as a form
// body, with an arbitrary session cookie. The server must never fail with
// 5xx or panic, and must never redirect anywhere but to the registered
// post-logout redirect URI (or, for a POST, to the GET of the endpoint).
func FuzzLogout(f *testing.F) {
	e := newFlowEnv(f)
	valid := url.Values{"client_id": {webClient}, "post_logout_redirect_uri": {e.signedOut}, "state": {"s"}}.Encode()
	for _, seed := range []string{
		valid,
		valid + "&id_token_hint=a.b.c",
		valid + "&id_token_hint=eyJhbGciOiJub25lIn0.eyJhdWQiOiJ3ZWIifQ.",
		valid + "&post_logout_redirect_uri=x",
		"post_logout_redirect_uri=" + url.QueryEscape(e.signedOut),
		"client_id=%zz",
		"client_id=web;state=x",
		"ui_locales=fr&logout_hint=alice",
		"",
	} {
		f.Add(seed, false, "")
		f.Add(seed, true, "")
	}
	f.Add(valid, false, "gatehouse-session=AAAA")
	f.Fuzz(func(t *testing.T, query string, post bool, cookie string) {
		var req *http.Request
		if post {
			req = httptest.NewRequest(http.MethodPost, "/oauth2/logout", strings.NewReader(query))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		} else {
			req = httptest.NewRequest(http.MethodGet, "/oauth2/logout", nil)
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
		loc := rec.Header().Get("Location")
		self := post && strings.HasPrefix(loc, e.issuer+"/oauth2/logout?") // a cookieless POST goes on as a GET
		if loc != "" && !self && loc != e.signedOut && !strings.HasPrefix(loc, e.signedOut+"?") {
			t.Fatalf("got Location %q for %q, want only the registered post-logout redirect URI", loc, query)
		}
	})
}
