package oauth

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// TestTokenClientAuthMethods: the credentials travel in the Authorization
// header (form-encoded first) or in the form, never both, and the grant's
// parameters are kept.
func TestTokenClientAuthMethods(t *testing.T) {
	type seen struct {
		basicID, basicSecret string
		hasBasic             bool
		form                 url.Values
	}
	var got seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = seen{}
		got.basicID, got.basicSecret, got.hasBasic = r.BasicAuth()
		r.ParseForm()
		got.form = r.PostForm
		WriteJSON(w, http.StatusOK, TokenResponse{AccessToken: "at", TokenType: "Bearer"})
	}))
	defer srv.Close()
	tests := []struct {
		name, method string
		wantBasic    bool
		wantErr      bool
	}{
		{name: "default_basic", method: "", wantBasic: true},
		{name: "basic", method: AuthClientSecretBasic, wantBasic: true},
		{name: "post", method: AuthClientSecretPost},
		{name: "unknown", method: "private_key_jwt", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := TokenClient{TokenURL: srv.URL, ClientID: "gate way", ClientSecret: "s&cret", AuthMethod: tt.method}
			params := url.Values{"grant_type": {GrantPassword}, "username": {"alice"}}
			_, err := c.Token(t.Context(), params)
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), "private_key_jwt") {
					t.Fatalf("got %v, want an error naming the method", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.form.Get("grant_type") != GrantPassword || got.form.Get("username") != "alice" {
				t.Errorf("got form %v, want the grant's parameters", got.form)
			}
			if len(params) != 2 {
				t.Errorf("got the caller's params changed to %v", params)
			}
			if tt.wantBasic {
				if !got.hasBasic || got.basicID != "gate+way" || got.basicSecret != "s%26cret" || got.form.Has("client_secret") {
					t.Errorf("got Basic %q:%q (%v), form %v, want form-encoded Basic credentials only", got.basicID, got.basicSecret, got.hasBasic, got.form)
				}
				return
			}
			if got.hasBasic || got.form.Get("client_id") != "gate way" || got.form.Get("client_secret") != "s&cret" {
				t.Errorf("got Basic %v, form %v, want the credentials in the form only", got.hasBasic, got.form)
			}
		})
	}
}
