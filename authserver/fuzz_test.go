package authserver_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzTokenRequest sends arbitrary content types, Authorization headers and
// form bodies to the token endpoint of a real server. Whatever arrives, the
// answer is never a 5xx and never a panic, is JSON that caches must not
// store, and is either a token response (200) or an RFC 6749 §5.2 error.
// The seed corpus in testdata/fuzz/FuzzTokenRequest holds the shapes of
// valid requests for every grant, so the fuzzer starts past client
// authentication.
func FuzzTokenRequest(f *testing.F) {
	s := newTestServer(f, nil)
	rt := s.login(f, "").RefreshToken
	form := "application/x-www-form-urlencoded"
	cli := basic("cli", cliSecret)
	f.Add(form, cli, "grant_type=password&username=alice&password="+alicePass)
	f.Add(form, cli, "grant_type=refresh_token&refresh_token="+rt)
	f.Add(form, basic("svc", svcSecret), "grant_type=client_credentials&scope=orders")
	f.Add(form, "", "grant_type=password&username=alice&password="+alicePass+"&client_id=cli&client_secret="+cliSecret)
	f.Add(form, "Basic Y2xpOg==", "grant_type=password&scope=orders%20profile")
	f.Add("application/json", cli, `{"grant_type":"password"}`)

	f.Fuzz(func(t *testing.T, contentType, authorization, body string) {
		r := httptest.NewRequestWithContext(t.Context(), http.MethodPost, s.TokenURL(), strings.NewReader(body))
		r.Header.Set("Content-Type", contentType)
		r.Header.Set("Authorization", authorization)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)

		if w.Code >= 500 {
			t.Fatalf("got status %d %s, want no 5xx", w.Code, w.Body)
		}
		if got := w.Header().Get("Cache-Control"); got != "no-store" {
			t.Errorf("got Cache-Control %q, want %q", got, "no-store")
		}
		var resp struct {
			Error       string `json:"error"`
			AccessToken string `json:"access_token"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
			t.Fatalf("got body %q (%v), want JSON", w.Body, err)
		}
		if w.Code == http.StatusOK && resp.AccessToken == "" || w.Code != http.StatusOK && resp.Error == "" {
			t.Errorf("got %d %s, want a token response or an error", w.Code, w.Body)
		}
	})
}
