package config

import (
	"path/filepath"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/accounts"
	"github.com/gatehouse-dev/gatehouse/internal/keyring"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

func TestSeedRegistersAuthMethods(t *testing.T) {
	seed, err := ParseSeed([]byte(`clients:
  - id: spa
    auth_method: none
    grants: [authorization_code, refresh_token]
    scopes: [openid, profile]
    redirect_uris: ["http://127.0.0.1:3000/callback"]
    post_logout_redirect_uris: ["http://127.0.0.1:3000/signed-out"]
  - id: web
    secret: "web-secret-0123456789"
    auth_method: client_secret_post
    grants: [authorization_code]
    redirect_uris: ["https://web.example.com/callback"]
`))
	if err != nil {
		t.Fatal(err)
	}
	st, err := OpenStore(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "g.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	m := &accounts.Manager{Store: st, Secrets: keyring.Generate().Hasher(keyring.PurposeClientSecret)}
	if err := seed.Apply(t.Context(), m); err != nil {
		t.Fatalf("apply: %v", err)
	}
	for id, want := range map[string]struct {
		method string
		public bool
	}{"spa": {store.AuthNone, true}, "web": {store.AuthClientSecretPost, false}} {
		c, err := st.GetClient(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if c.AuthMethod != want.method || c.Public != want.public {
			t.Errorf("client %s: got method %q public %v, want %q and %v", id, c.AuthMethod, c.Public, want.method, want.public)
		}
	}
	if c, _ := st.GetClient(t.Context(), "spa"); len(c.PostLogoutRedirectURIs) != 1 || c.PostLogoutRedirectURIs[0] != "http://127.0.0.1:3000/signed-out" {
		t.Errorf("client spa: got post-logout redirect URIs %q, want the seed's", c.PostLogoutRedirectURIs)
	}

	bad, err := ParseSeed([]byte("clients:\n  - id: app\n    secret: \"app-secret-0123456789\"\n    grants: [authorization_code]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := bad.Apply(t.Context(), m); err == nil {
		t.Fatalf("got nil, want an error: an authorization_code client needs redirect URIs")
	}
}
