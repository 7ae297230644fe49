package accounts_test

import (
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/accounts"
	"github.com/gatehouse-dev/gatehouse/internal/keyring"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/internal/password"
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
		{"post-logout redirect", accounts.ClientSpec{Grants: code, RedirectURIs: cb, PostLogoutRedirectURIs: []string{"https://app.example.com/bye", "http://127.0.0.1:8000/bye"}},
			false, store.AuthClientSecretBasic, false},
		{"post-logout redirect with fragment", accounts.ClientSpec{Grants: code, RedirectURIs: cb, PostLogoutRedirectURIs: []string{"https://app.example.com/bye#x"}}, true, "", false},
		{"post-logout redirect off loopback over http", accounts.ClientSpec{Grants: code, RedirectURIs: cb, PostLogoutRedirectURIs: []string{"http://app.example.com/bye"}}, true, "", false},
		{"javascript post-logout redirect", accounts.ClientSpec{Grants: code, RedirectURIs: cb, PostLogoutRedirectURIs: []string{"javascript:alert(1)"}}, true, "", false},
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
			if !slices.Equal(stored.PostLogoutRedirectURIs, tt.spec.PostLogoutRedirectURIs) {
				t.Fatalf("got post-logout redirect URIs %q, want %q", stored.PostLogoutRedirectURIs, tt.spec.PostLogoutRedirectURIs)
			}
			if (secret == "") != tt.wantPublic || (stored.SecretHash == "") != tt.wantPublic {
				t.Fatalf("got secret %q hash %q, want a secret exactly for confidential clients", secret, stored.SecretHash)
			}
		})
	}
}

// TestTokensNotBefore: the changes an event announces end the user's
// tokens up to their instant, never moving it back; the same changes made
// for a seed or a rehash end none.
func TestTokensNotBefore(t *testing.T) {
	t1 := time.Date(2031, time.March, 4, 5, 6, 7, 891_000_000, time.UTC)
	t2 := t1.Add(time.Minute)
	tests := []struct {
		name   string
		change func(*testing.T, *accounts.Manager) error
		want   *time.Time
	}{
		{"SetPassword", func(t *testing.T, m *accounts.Manager) error {
			return m.SetPassword(t.Context(), "alice", "new-password")
		}, nil},
		{"SetRoles", func(t *testing.T, m *accounts.Manager) error { return m.SetRoles(t.Context(), "alice", []string{"x"}) }, nil},
		{"SetDisabled", func(t *testing.T, m *accounts.Manager) error { return m.SetDisabled(t.Context(), "alice", true) }, nil},
		{"ChangePassword", func(t *testing.T, m *accounts.Manager) error {
			_, err := m.ChangePassword(t.Context(), "alice", "new-password", t1)
			return err
		}, &t1},
		{"ChangeRoles", func(t *testing.T, m *accounts.Manager) error {
			_, err := m.ChangeRoles(t.Context(), "alice", []string{"x"}, t1)
			return err
		}, &t1},
		{"Disable", func(t *testing.T, m *accounts.Manager) error {
			_, err := m.Disable(t.Context(), "alice", t1)
			return err
		}, &t1},
		{"EndTokens twice, the later first", func(t *testing.T, m *accounts.Manager) error {
			if _, err := m.EndTokens(t.Context(), "alice", t2); err != nil {
				return err
			}
			_, err := m.EndTokens(t.Context(), "alice", t1)
			return err
		}, &t2},
		{"invalid password ends nothing", func(t *testing.T, m *accounts.Manager) error {
			if _, err := m.ChangePassword(t.Context(), "alice", "short", t1); !errors.Is(err, accounts.ErrInvalid) {
				t.Errorf("ChangePassword with a short password: got %v, want ErrInvalid", err)
			}
			return nil
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newManager(t)
			if _, err := m.AddUser(t.Context(), "alice", "old-password", nil); err != nil {
				t.Fatal(err)
			}
			if err := tt.change(t, m); err != nil {
				t.Fatal(err)
			}
			u, err := m.Store.GetUser(t.Context(), "alice")
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tt.want == nil && u.TokensNotBefore != nil:
				t.Errorf("TokensNotBefore: got %v, want none", *u.TokensNotBefore)
			case tt.want != nil && (u.TokensNotBefore == nil || !u.TokensNotBefore.Equal(*tt.want)):
				t.Errorf("TokensNotBefore: got %v, want %v", u.TokensNotBefore, *tt.want)
			}
		})
	}
}

// TestRehash: a login's rehash never writes back a password changed since
// the login verified it.
func TestRehash(t *testing.T) {
	m := newManager(t)
	m.Params = password.Params{Memory: 64, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16}
	u, err := m.AddUser(t.Context(), "alice", "old-password-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	verified := u.PasswordHash // what a login verified "old-password-1" against
	if _, err := m.ChangePassword(t.Context(), "alice", "new-password-2", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := m.Rehash(t.Context(), "alice", "old-password-1", verified); !errors.Is(err, accounts.ErrPasswordChanged) {
		t.Errorf("rehash after a change: got %v, want ErrPasswordChanged", err)
	}
	check := func(pw string, want bool) {
		t.Helper()
		u, err := m.Store.GetUser(t.Context(), "alice")
		if err != nil {
			t.Fatal(err)
		}
		if ok, _, _ := password.Verify(pw, u.PasswordHash, m.Params); ok != want {
			t.Errorf("password %q: got valid=%v, want %v", pw, ok, want)
		}
	}
	check("new-password-2", true)
	check("old-password-1", false)
	current, _ := m.Store.GetUser(t.Context(), "alice")
	if err := m.Rehash(t.Context(), "alice", "new-password-2", current.PasswordHash); err != nil {
		t.Errorf("rehash of the current password: %v", err)
	}
	check("new-password-2", true)
}
