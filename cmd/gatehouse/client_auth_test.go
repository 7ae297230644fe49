package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/keyring"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/sqlite"
)

func TestClientAddAuthMethod(t *testing.T) {
	dir := t.TempDir()
	if _, err := keyring.LoadFile(filepath.Join(dir, "master.key"), true); err != nil {
		t.Fatal(err)
	}
	db := "sqlite:" + filepath.Join(dir, "gh.db")
	out, err := run(t, "", "client", "add", "spa", "--auth-method", "none", "--grants", "authorization_code,refresh_token",
		"--redirect-uris", "http://127.0.0.1:3000/callback",
		"--post-logout-redirect-uris", "http://127.0.0.1:3000/signed-out,http://127.0.0.1:3000/bye", "--store", db)
	if err != nil || strings.Contains(out, "client secret") {
		t.Fatalf("client add: got %q, %v, want a public client and no secret", out, err)
	}
	if _, err := run(t, "", "client", "add", "web", "--auth-method", "client_secret_post", "--grants", "client_credentials",
		"--store", db); err != nil {
		t.Fatalf("client add: %v", err)
	}
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "gh.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for id, want := range map[string]string{"spa": store.AuthNone, "web": store.AuthClientSecretPost} {
		c, err := st.GetClient(context.Background(), id)
		if err != nil || c.AuthMethod != want || c.Public != (want == store.AuthNone) {
			t.Fatalf("client %s: got %+v, %v, want auth method %q", id, c, err, want)
		}
	}
	spa, _ := st.GetClient(context.Background(), "spa")
	if got := strings.Join(spa.PostLogoutRedirectURIs, ","); got != "http://127.0.0.1:3000/signed-out,http://127.0.0.1:3000/bye" {
		t.Fatalf("client spa: got post-logout redirect URIs %q, want the two of the flag", got)
	}
}
