package main

import (
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/authserver"
	"github.com/gatehouse-dev/gatehouse/internal/jose"
	"github.com/gatehouse-dev/gatehouse/internal/keyring"
	"github.com/gatehouse-dev/gatehouse/internal/password"
	"github.com/gatehouse-dev/gatehouse/internal/secevent"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/sqlite"
)

func TestKeysCommandsOnAStore(t *testing.T) {
	dir := t.TempDir()
	if _, err := keyring.LoadFile(filepath.Join(dir, "master.key"), true); err != nil {
		t.Fatal(err)
	}
	db := "sqlite:" + filepath.Join(dir, "gh.db")
	out, err := run(t, "", "keys", "rotate", "--alg", "EdDSA", "--publish-delay", "1h", "--store", db)
	if err != nil || !strings.Contains(out, "added EdDSA key") {
		t.Fatalf("keys rotate: got %q, %v", out, err)
	}
	out, err = run(t, "", "keys", "rotate", "--store", db) // ES256, the default
	if err != nil || !strings.Contains(out, "added ES256 key") {
		t.Fatalf("keys rotate (default alg): got %q, %v", out, err)
	}
	out, err = run(t, "", "keys", "list", "--store", db)
	if err != nil || strings.Count(out, "pending") != 2 || !strings.Contains(out, "EdDSA") {
		t.Fatalf("keys list: got %q, %v, want two pending keys", out, err)
	}
	if _, err := run(t, "", "keys", "rotate", "--alg", "HS256", "--store", db); err == nil {
		t.Fatalf("keys rotate --alg HS256: got no error")
	}
	if _, err := run(t, "", "keys", "rotate", "--store", "sqlite:"+filepath.Join(t.TempDir(), "nokey.db")); err == nil {
		t.Fatalf("keys rotate without a master key: got no error")
	}
}

func TestClientAddPrivateKeyJWTAndTrustedProxy(t *testing.T) {
	dir := t.TempDir()
	if _, err := keyring.LoadFile(filepath.Join(dir, "master.key"), true); err != nil {
		t.Fatal(err)
	}
	key, _ := jose.GenerateKey(jose.ES256)
	jwks, _ := json.Marshal(jose.NewKeySet(key.Public()))
	jwksFile := filepath.Join(dir, "billing.jwks.json")
	os.WriteFile(jwksFile, jwks, 0o600)
	db := "sqlite:" + filepath.Join(dir, "gh.db")
	out, err := run(t, "", "client", "add", "billing", "--auth-method", "private_key_jwt", "--jwks-file", jwksFile, "--store", db)
	if err != nil || strings.Contains(out, "client secret") {
		t.Fatalf("client add private_key_jwt: got %q, %v, want no secret printed", out, err)
	}
	if _, err := run(t, "", "client", "add", "gw", "--grants", "password", "--trusted-proxy", "--store", db); err != nil {
		t.Fatalf("client add --trusted-proxy: %v", err)
	}
	if _, err := run(t, "", "client", "add", "nokeys", "--auth-method", "private_key_jwt", "--store", db); err == nil {
		t.Fatalf("private_key_jwt without --jwks-file: got no error")
	}
	st, err := sqlite.Open(t.Context(), filepath.Join(dir, "gh.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c, _ := st.GetClient(t.Context(), "billing")
	if c.AuthMethod != store.AuthPrivateKeyJWT || c.SecretHash != "" || len(c.JWKS) == 0 {
		t.Fatalf("billing: got %+v, want private_key_jwt with a JWKS and no secret", c)
	}
	if gw, _ := st.GetClient(t.Context(), "gw"); !gw.TrustedProxy {
		t.Fatalf("gw: got TrustedProxy false")
	}
	out, err = run(t, "", "client", "disable", "gw", "--store", db)
	if err != nil || !strings.Contains(out, "disabled client gw") {
		t.Fatalf("client disable: got %q, %v", out, err)
	}
}

// With --admin, the commands go through a running server's admin API.
func TestCommandsThroughTheAdminAPI(t *testing.T) {
	dir := t.TempDir()
	st, err := sqlite.Open(t.Context(), filepath.Join(dir, "gh.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const token = "cli-test-admin-token-0123456789"
	as, err := authserver.New(t.Context(), authserver.Config{Issuer: "http://127.0.0.1:1", Store: st,
		Keyring: keyring.Generate(), AdminToken: token, PasswordParams: password.Params{Memory: 64, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16},
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(as.AdminHandler())
	defer srv.Close()
	tokenFile := filepath.Join(dir, "admin.token")
	os.WriteFile(tokenFile, []byte(token+"\n"), 0o600)
	admin := []string{"--admin", srv.URL, "--admin-token-file", tokenFile}
	steps := []struct {
		stdin string
		args  []string
		want  string
	}{
		{"erin-password\n", []string{"user", "add", "erin", "--roles", "consumer"}, "added user erin"},
		{"", []string{"user", "roles", "erin", "--roles", "consumer,admin"}, "consumer,admin"},
		{"", []string{"user", "list"}, "erin"},
		{"new-erin-password\n", []string{"user", "passwd", "erin"}, "password of erin changed"},
		{"", []string{"user", "sessions", "erin"}, "SESSION"},
		{"", []string{"user", "revoke", "erin"}, "revoked 0 sessions"},
		{"", []string{"user", "disable", "erin"}, "disabled user erin"},
		{"", []string{"user", "enable", "erin"}, "enabled user erin"},
		{"", []string{"client", "add", "billing", "--scopes", "orders"}, "client secret (shown once"},
		{"", []string{"client", "list"}, "billing"},
		{"", []string{"client", "disable", "billing"}, "disabled client billing"},
		{"", []string{"keys", "rotate", "--alg", "RS256"}, "added RS256 key"},
		{"", []string{"keys", "list"}, "pending"},
	}
	for _, s := range steps {
		out, err := run(t, s.stdin, append(s.args, admin...)...)
		if err != nil || !strings.Contains(out, s.want) {
			t.Fatalf("%v: got %q, %v, want output with %q", s.args, out, err, s.want)
		}
	}
	if u, err := st.GetUser(t.Context(), "erin"); err != nil || len(u.Roles) != 2 {
		t.Fatalf("erin in the server's store: got %+v, %v", u, err)
	}
	os.WriteFile(tokenFile, []byte("wrong-token-wrong-token\n"), 0o600)
	if out, err := run(t, "", append([]string{"user", "list"}, admin...)...); err == nil {
		t.Fatalf("wrong admin token: got %q, want an error", out)
	}
	if _, err := run(t, "", "user", "list", "--admin", srv.URL, "--store", "sqlite:x.db", "--admin-token-file", tokenFile); err == nil {
		t.Fatalf("--admin with --store: got no error")
	}
	t.Setenv("GATEHOUSE_ADMIN_TOKEN", token)
	if out, err := run(t, "", "user", "list", "--admin", srv.URL); err != nil || !strings.Contains(out, "erin") {
		t.Fatalf("token from the environment: got %q, %v", out, err)
	}
}

// TestKeysRevoke: `keys revoke` on a store and through the admin API
// refuses the only signing key, then revokes a key once another can sign,
// and records a key-retired event.
func TestKeysRevoke(t *testing.T) {
	dir := t.TempDir()
	kr, err := keyring.LoadFile(filepath.Join(dir, "master.key"), true)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "gh.db")
	db := "sqlite:" + path
	if _, err := run(t, "", "keys", "rotate", "--publish-delay", "0", "--store", db); err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	keys, _ := st.ListSigningKeys(t.Context())
	first := keys[0].ID
	if out, err := run(t, "", "keys", "revoke", "--store", db, "--", first); err == nil || !strings.Contains(err.Error(), "rotate first") {
		t.Fatalf("revoke the only key: got %q, %v, want an error saying to rotate first", out, err)
	}
	if _, err := run(t, "", "keys", "rotate", "--store", db); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, "", "keys", "revoke", "--store", db, "--", first)
	if err != nil || !strings.Contains(out, "revoked key "+first) {
		t.Fatalf("keys revoke: got %q, %v", out, err)
	}
	if out, _ := run(t, "", "keys", "list", "--store", db); !strings.Contains(out, "expired") || !strings.Contains(out, "active") {
		t.Fatalf("keys list after revoke: got %q, want the revoked key expired and the other active", out)
	}
	assertKeyEvents(t, st, first)
	// Key IDs are base64url thumbprints and may begin with '-': after '--'
	// they are read as the argument, and without it the error says so.
	if _, err := run(t, "", "keys", "revoke", "-Ov1My", "--store", db); err == nil || !strings.Contains(err.Error(), "goes after '--'") {
		t.Errorf("a key ID beginning with '-' without '--': got %v, want the error to say to put it after '--'", err)
	}
	if _, err := run(t, "", "keys", "revoke", "--store", db, "--", "-Ov1My"); err == nil || strings.Contains(err.Error(), "flag") {
		t.Errorf("an unknown key ID beginning with '-' after '--': got %v, want a not-found error, not a flag error", err)
	}

	// Through the admin API of a running server: its JWKS drops the key.
	const token = "cli-test-admin-token-0123456789"
	as, err := authserver.New(t.Context(), authserver.Config{Issuer: "http://127.0.0.1:1", Store: st,
		Keyring: kr, AdminToken: token, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(as.AdminHandler())
	defer srv.Close()
	t.Setenv("GATEHOUSE_ADMIN_TOKEN", token)
	keys, _ = st.ListSigningKeys(t.Context())
	signer := keys[len(keys)-1].ID
	if out, err := run(t, "", "keys", "revoke", "--admin", srv.URL, "--", signer); err == nil || !strings.Contains(err.Error(), "rotate first") {
		t.Fatalf("revoke the only signer via --admin: got %q, %v, want 409 saying to rotate first", out, err)
	}
	if _, err := run(t, "", "keys", "rotate", "--admin", srv.URL); err != nil {
		t.Fatal(err)
	}
	if out, err := run(t, "", "keys", "revoke", "--admin", srv.URL, "--", signer); err != nil || !strings.Contains(out, "revoked key "+signer) {
		t.Fatalf("keys revoke --admin: got %q, %v", out, err)
	}
	rec := httptest.NewRecorder()
	as.ServeHTTP(rec, httptest.NewRequest("GET", "/oauth2/jwks", nil))
	jwks, err := jose.ParseKeySet(rec.Body.Bytes())
	if err != nil || len(jwks.Lookup(signer)) != 0 || len(jwks.Lookup("")) == 0 {
		t.Fatalf("JWKS after revoke --admin: got %s, %v, want keys without %q", rec.Body, err, signer)
	}
	assertKeyEvents(t, st, first, signer)
}

func assertKeyEvents(t *testing.T, st store.Store, kids ...string) {
	t.Helper()
	events, err := st.ListEvents(t.Context(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range events {
		if e.Type == secevent.KeyRetired {
			var d secevent.EventPayload
			json.Unmarshal(e.Data, &d)
			got = append(got, d.KeyID)
		}
	}
	if !slices.Equal(got, kids) {
		t.Fatalf("key-retired events: got kids %v, want %v", got, kids)
	}
}
