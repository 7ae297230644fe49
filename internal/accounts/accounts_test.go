package accounts_test

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/accounts"
	"github.com/gatehouse-dev/gatehouse/internal/keyring"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/sqlite"
)

func newManager(t *testing.T) *accounts.Manager {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &accounts.Manager{Store: st, Secrets: keyring.Generate().Hasher(keyring.PurposeClientSecret)}
}

func TestClientAuthMethodAndRedirectURIs(t *testing.T) {
	code := []string{oauth.GrantAuthorizationCode, oauth.GrantRefreshToken}
	cb := []string{"https://app.example.com/callback"}
	tests := []struct {
		name       string
		spec       accounts.ClientSpec
		wantErr    bool
		wantMethod string
		wantPublic bool
	}{
		{"confidential defaults to client_secret_basic", accounts.ClientSpec{Grants: []string{oauth.GrantClientCredentials}},
			false, store.AuthClientSecretBasic, false},
		{"client_secret_post", accounts.ClientSpec{AuthMethod: store.AuthClientSecretPost, Grants: []string{oauth.GrantClientCredentials}},
			false, store.AuthClientSecretPost, false},
		{"public defaults to none", accounts.ClientSpec{Public: true, Grants: code, RedirectURIs: cb},
			false, store.AuthNone, true},
		{"none makes a public client", accounts.ClientSpec{AuthMethod: store.AuthNone, Grants: code, RedirectURIs: cb},
			false, store.AuthNone, true},
		{"public with a secret method", accounts.ClientSpec{Public: true, AuthMethod: store.AuthClientSecretBasic, Grants: code, RedirectURIs: cb},
			true, "", false},
		{"none with a secret", accounts.ClientSpec{AuthMethod: store.AuthNone, Secret: "0123456789abcdef", Grants: code, RedirectURIs: cb},
			true, "", false},
		{"unknown method", accounts.ClientSpec{AuthMethod: "self_signed_tls_client_auth", Grants: []string{oauth.GrantClientCredentials}},
			true, "", false},
		{"public with client_credentials", accounts.ClientSpec{Public: true, Grants: []string{oauth.GrantClientCredentials}},
			true, "", false},
		{"public with password", accounts.ClientSpec{Public: true, Grants: []string{oauth.GrantPassword}},
			true, "", false},
		{"authorization_code without redirect URIs", accounts.ClientSpec{Grants: code}, true, "", false},
		{"loopback http redirect", accounts.ClientSpec{Grants: code, RedirectURIs: []string{"http://127.0.0.1:8000/cb", "http://localhost/cb", "http://[::1]:9/cb"}},
			false, store.AuthClientSecretBasic, false},
		{"native app scheme", accounts.ClientSpec{AuthMethod: store.AuthNone, Grants: code, RedirectURIs: []string{"com.example.app:/oauth2redirect"}},
			false, store.AuthNone, true},
		{"http redirect off loopback", accounts.ClientSpec{Grants: code, RedirectURIs: []string{"http://app.example.com/cb"}}, true, "", false},
		{"javascript redirect", accounts.ClientSpec{Grants: code, RedirectURIs: []string{"javascript:alert(1)"}}, true, "", false},
		{"data redirect", accounts.ClientSpec{Grants: code, RedirectURIs: []string{"data:text/html,hi"}}, true, "", false},
		{"redirect with fragment", accounts.ClientSpec{Grants: code, RedirectURIs: []string{"https://app.example.com/cb#x"}}, true, "", false},
		{"relative redirect", accounts.ClientSpec{Grants: code, RedirectURIs: []string{"/cb"}}, true, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newManager(t)
			tt.spec.ID = "app"
			c, secret, err := m.AddClient(t.Context(), tt.spec)
			if tt.wantErr {
				if !errors.Is(err, accounts.ErrInvalid) {
					t.Fatalf("got %v, want an ErrInvalid", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("got %v, want nil", err)
			}
			stored, err := m.Store.GetClient(t.Context(), "app")
			if err != nil {
				t.Fatal(err)
			}
			if stored.AuthMethod != tt.wantMethod || stored.Public != tt.wantPublic || c.AuthMethod != tt.wantMethod {
				t.Fatalf("got method %q public %v, want %q and %v", stored.AuthMethod, stored.Public, tt.wantMethod, tt.wantPublic)
			}
			if (secret == "") != tt.wantPublic || (stored.SecretHash == "") != tt.wantPublic {
				t.Fatalf("got secret %q hash %q, want a secret exactly for confidential clients", secret, stored.SecretHash)
			}
		})
	}
}
