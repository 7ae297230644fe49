package authserver_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// TestClientAuthMethodEnforced checks that a client authenticates only by
// the method it is registered for, and that "none" is for public clients
// and PKCE-bound grants only.
func TestClientAuthMethodEnforced(t *testing.T) {
	e := newFlowEnv(t)
	// A public client registered behind accounts' back with the password
	// grant: the token endpoint must still refuse it.
	now := time.Now().UTC()
	err := e.store.CreateClient(t.Context(), store.Client{ID: "legacy-public", Public: true,
		Grants: []string{oauth.GrantPassword, oauth.GrantAuthorizationCode}, CreatedAt: now, UpdatedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	// A refresh with an unknown token fails with invalid_grant once the
	// client is authenticated, and with invalid_client before.
	unknownRefresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}}
	with := func(v url.Values, kv ...string) url.Values {
		out := url.Values{}
		for k, vs := range v {
			out[k] = vs
		}
		for i := 0; i < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}
	tests := []struct {
		name       string
		form       url.Values
		basic      *[2]string
		wantStatus int
		wantError  string
		wantBasic  bool // WWW-Authenticate: Basic
	}{
		{"basic client with client_secret_post", with(unknownRefresh, "client_id", webClient, "client_secret", e.secrets[webClient]),
			nil, 401, "invalid_client", false},
		{"basic client with Basic", unknownRefresh, &[2]string{webClient, e.secrets[webClient]}, 400, "invalid_grant", false},
		{"basic client with none", with(unknownRefresh, "client_id", webClient), nil, 401, "invalid_client", false},
		{"post client with Basic", unknownRefresh, &[2]string{postClient, e.secrets[postClient]}, 401, "invalid_client", true},
		{"post client with client_secret_post", with(unknownRefresh, "client_id", postClient, "client_secret", e.secrets[postClient]),
			nil, 400, "invalid_grant", false},
		{"post client with a wrong secret", with(unknownRefresh, "client_id", postClient, "client_secret", "wrong-secret-0123456789"),
			nil, 401, "invalid_client", false},
		{"public client with none", with(unknownRefresh, "client_id", spaClient), nil, 400, "invalid_grant", false},
		{"public client with none and client_credentials", url.Values{"grant_type": {"client_credentials"}, "client_id": {spaClient}},
			nil, 400, "unauthorized_client", false},
		{"public client with Basic and no secret", unknownRefresh, &[2]string{spaClient, ""}, 401, "invalid_client", true},
		{"public client with an invented secret", with(unknownRefresh, "client_id", spaClient, "client_secret", "invented-secret-0123"),
			nil, 401, "invalid_client", false},
		{"public client with the password grant", url.Values{"grant_type": {"password"}, "client_id": {"legacy-public"},
			"username": {"alice"}, "password": {alicePassword}}, nil, 400, "unauthorized_client", false},
		{"unknown client with none", with(unknownRefresh, "client_id", "nobody"), nil, 401, "invalid_client", false},
		{"no client at all", unknownRefresh, nil, 401, "invalid_client", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body, h := e.tokenPost(tt.form, tt.basic)
			if status != tt.wantStatus || body["error"] != tt.wantError {
				t.Fatalf("got %d %v, want %d %s", status, body, tt.wantStatus, tt.wantError)
			}
			if got := strings.HasPrefix(h.Get("WWW-Authenticate"), "Basic "); got != tt.wantBasic {
				t.Fatalf("WWW-Authenticate %q: got Basic %v, want %v", h.Get("WWW-Authenticate"), got, tt.wantBasic)
			}
			if h.Get("Cache-Control") != "no-store" {
				t.Fatalf("Cache-Control: got %q, want no-store", h.Get("Cache-Control"))
			}
		})
	}
}
