package authserver_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

func TestDiscoveryAuthorizationCode(t *testing.T) {
	e := newFlowEnv(t)
	for _, path := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"} {
		resp, err := http.Get(e.issuer + path)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		err = json.NewDecoder(resp.Body).Decode(&m)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		for key, want := range map[string]any{
			"authorization_endpoint":                         e.issuer + "/oauth2/authorize",
			"userinfo_endpoint":                              e.issuer + "/oauth2/userinfo",
			"end_session_endpoint":                           e.issuer + "/oauth2/logout",
			"response_types_supported":                       []any{"code"},
			"response_modes_supported":                       []any{"query"},
			"code_challenge_methods_supported":               []any{"S256"},
			"authorization_response_iss_parameter_supported": true,
			"request_uri_parameter_supported":                false,
		} {
			if got, _ := json.Marshal(m[key]); string(got) != mustJSON(want) {
				t.Errorf("%s %s: got %s, want %s", path, key, got, mustJSON(want))
			}
		}
		for key, wants := range map[string][]string{
			"grant_types_supported":                 {"authorization_code", "refresh_token"},
			"token_endpoint_auth_methods_supported": {"client_secret_basic", "client_secret_post", "none"},
			"scopes_supported":                      {"openid", "profile", "roles"},
			"claims_supported":                      {"sub", "nonce", "at_hash", "preferred_username", "roles", "sid", "auth_time"},
			"id_token_signing_alg_values_supported": {"ES256"},
		} {
			list, _ := m[key].([]any)
			for _, want := range wants {
				if !slices.Contains(list, any(want)) {
					t.Errorf("%s %s: got %v, want it to contain %q", path, key, list, want)
				}
			}
		}
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestUserinfoErrors(t *testing.T) {
	e := newFlowEnv(t)
	basic := &[2]string{cliClient, e.secrets[cliClient]}
	passwordGrant := func(scope string) map[string]any {
		status, body, _ := e.tokenPost(url.Values{"grant_type": {"password"}, "username": {"alice"},
			"password": {alicePassword}, "scope": {scope}}, basic)
		if status != http.StatusOK {
			t.Fatalf("password grant: got %d %v, want 200", status, body)
		}
		return body
	}
	oidcTokens, noOpenID, revoked := passwordGrant("openid"), passwordGrant("orders"), passwordGrant("openid")
	req, _ := http.NewRequest(http.MethodPost, e.issuer+"/oauth2/revoke",
		strings.NewReader(url.Values{"token": {revoked["access_token"].(string)}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(basic[0], url.QueryEscape(basic[1]))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: got %d, want 200", resp.StatusCode)
	}
	tests := []struct {
		name          string
		authorization string
		wantStatus    int
		wantError     string // in the body and the challenge; "" for no error in the challenge
	}{
		{"no token", "", 401, ""},
		{"not bearer", "Basic YTpi", 401, ""},
		{"garbage JWT", "Bearer a.b.c", 401, "invalid_token"},
		{"unknown opaque token", "Bearer " + strings.Repeat("x", 43), 401, "invalid_token"},
		{"an ID token", "Bearer " + oidcTokens["id_token"].(string), 401, "invalid_token"},
		{"token without openid", "Bearer " + noOpenID["access_token"].(string), 403, "insufficient_scope"},
		{"revoked token", "Bearer " + revoked["access_token"].(string), 401, "invalid_token"},
		{"valid token", "Bearer " + oidcTokens["access_token"].(string), 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, method := range []string{http.MethodGet, http.MethodPost} {
				req, _ := http.NewRequest(method, e.issuer+"/oauth2/userinfo", nil)
				if tt.authorization != "" {
					req.Header.Set("Authorization", tt.authorization)
				}
				status, body, h := doJSON(t, req)
				if status != tt.wantStatus {
					t.Fatalf("%s: got %d %v, want %d", method, status, body, tt.wantStatus)
				}
				if status == http.StatusOK {
					if body["sub"] != e.alice.ID || body["preferred_username"] != nil || h.Get("Cache-Control") != "no-store" {
						t.Fatalf("%s: got %v, want only alice's sub (no profile scope), not cached", method, body)
					}
					continue
				}
				challenge := h.Get("WWW-Authenticate")
				if !strings.HasPrefix(challenge, `Bearer realm="gatehouse"`) ||
					strings.Contains(challenge, "error=") != (tt.wantError != "") ||
					tt.wantError != "" && (body["error"] != tt.wantError || !strings.Contains(challenge, `error="`+tt.wantError+`"`)) {
					t.Fatalf("%s: got %v with WWW-Authenticate %q, want error %q", method, body, challenge, tt.wantError)
				}
			}
		})
	}
}

func TestPasswordGrantIDToken(t *testing.T) {
	e := newFlowEnv(t)
	basic := &[2]string{cliClient, e.secrets[cliClient]}
	form := url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {alicePassword}, "scope": {"orders"}}
	status, body, _ := e.tokenPost(form, basic)
	if status != http.StatusOK || body["id_token"] != nil {
		t.Fatalf("without openid: got %d %v, want 200 and no id_token", status, body)
	}
	form.Set("scope", "openid orders")
	if status, body, _ = e.tokenPost(form, basic); status != http.StatusOK || body["id_token"] == nil {
		t.Fatalf("with openid: got %d %v, want 200 and an id_token", status, body)
	}
}
