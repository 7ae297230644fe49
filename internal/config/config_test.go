package config

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func write(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestUnknownKeysNameTheLine(t *testing.T) {
	tests := []struct {
		name string
		load func(path string) error
		body string
		want string
	}{
		{"seed", func(p string) error { _, err := LoadSeed(p); return err },
			"users:\n  - username: a\n    pasword: x\n", "line 3"},
		{"authserver", func(p string) error { _, err := LoadAuthServer(p); return err },
			"issuer: http://127.0.0.1:9000\nstore: sqlite:x.db\nacess_token_ttl: 5m\n", "line 3"},
		{"gateway", func(p string) error { _, _, err := LoadGateway(p); return err },
			"issuer: http://x\naudience: [a]\nroutes:\n  - prefix: /a\n    upstream: http://u\n    rule: []\n", "line 6"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.load(write(t, tt.name+".yaml", tt.body))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error naming %q", err, tt.want)
			}
		})
	}
}

func TestAuthServerFile(t *testing.T) {
	p := write(t, "as.yaml", "issuer: https://auth.example.com\nstore: sqlite:/tmp/x.db\naccess_token_ttl: 2m\nrefresh_grace: 0s\n")
	c, err := LoadAuthServer(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.AccessTokenTTL != 2*time.Minute || c.Listen != "127.0.0.1:9000" || c.Grace() >= 0 {
		t.Fatalf("got ttl %v listen %q grace %v, want 2m, the default listener, grace off", c.AccessTokenTTL, c.Listen, c.Grace())
	}
	if _, err := LoadAuthServer(write(t, "bad.yaml", "listen: :9000\n")); err == nil ||
		!strings.Contains(err.Error(), "issuer is required") || !strings.Contains(err.Error(), "store is required") {
		t.Fatalf("got %v, want both missing fields named", err)
	}
}

func TestGatewayFile(t *testing.T) {
	secret := write(t, "secret", "s3cr3t-from-file\n")
	p := write(t, "gw.yaml", `issuer: http://127.0.0.1:9000
audience: [api]
client_id: gateway
client_secret_file: `+secret+`
routes:
  - prefix: /api/admin
    upstream: http://127.0.0.1:9101
    strip_prefix: /api
    rules:
      - methods: [GET]
        roles: [admin]
revocation_url: http://127.0.0.1:9000/oauth2/revoke
session:
  enabled: true
  same_site: strict
  public_url: https://app.example.com
  refresh_before: 20s
`)
	c, gc, err := LoadGateway(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:8080" || gc.ClientSecret != "s3cr3t-from-file" || len(gc.Routes) != 1 ||
		gc.Routes[0].Rules[0].Roles[0] != "admin" || gc.Routes[0].StripPrefix != "/api" {
		t.Fatalf("got %+v / %+v, want the file's values", c, gc)
	}
	if s := gc.Session; !s.Enabled || s.SameSite != http.SameSiteStrictMode || s.PublicURL != "https://app.example.com" ||
		s.RefreshBefore != 20*time.Second || gc.RevocationURL != "http://127.0.0.1:9000/oauth2/revoke" {
		t.Fatalf("got session %+v, revocation_url %q, want the file's values", s, gc.RevocationURL)
	}
	if _, _, err := LoadGateway(write(t, "samesite.yaml", "issuer: http://x\naudience: [a]\nroutes: []\nsession: {same_site: none}\n")); err == nil ||
		!strings.Contains(err.Error(), "same_site") {
		t.Fatalf("same_site none: got %v, want an error naming same_site", err)
	}
	t.Setenv(EnvGatewaySecret, "")
	if _, _, err := LoadGateway(write(t, "nosecret.yaml", "issuer: http://x\naudience: [a]\nclient_id: gw\nroutes: []\n")); err == nil {
		t.Fatalf("got no error for a client without a secret")
	}
}

func TestOpenStoreRejectsUnknownKinds(t *testing.T) {
	for _, spec := range []string{"", "mysql:x", "sqlite:", "nocolon"} {
		if _, err := OpenStore(t.Context(), spec); err == nil {
			t.Errorf("OpenStore(%q): got nil error", spec)
		}
	}
}

func writeFile(path, body string) error { return os.WriteFile(path, []byte(body), 0o600) }
