package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/gateway"
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

// TestGatewayFileKeys reads a file with every key of the gateway file.
func TestGatewayFileKeys(t *testing.T) {
	dir := t.TempDir()
	secret := write(t, "secret", "s3cr3t\n")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "phantom.pem")
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	tlsSrv := httptest.NewTLSServer(http.NotFoundHandler())
	defer tlsSrv.Close()
	caFile := filepath.Join(dir, "ca.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsSrv.Certificate().Raw}), 0o600)
	p := write(t, "gw.yaml", `listen: 127.0.0.1:8443
admin_listen: 127.0.0.1:9090
issuer: https://auth.example.com
audience: [api]
client_id: gateway
client_secret_file: `+secret+`
token_endpoint_auth_method: client_secret_post
roles_claim: realm_access.roles
username_claim: email
access_token_types: [at+jwt, JWT]
upstream_timeout: 5s
upstream_ca_file: `+caFile+`
access_log: false
rate_limit: {rate: 10, burst: 20}
rate_limit_keys: 5000
opaque_tokens:
  introspection_url: https://auth.example.com/introspect
  cache_ttl: 10s
  cache_size: 500
  phantom_issuer: https://gateway.internal
  phantom_ttl: 30s
  signing_key_file: `+keyFile+`
  jwks_path: /.well-known/gw/jwks.json
routes:
  - name: order
    pattern: "GET /api/orders/{id}"
    upstream: https://orders.internal
    strip_prefix: /api
    audience: orders
    timeout: 2s
    rate_limit: {rate: 1}
    rules:
      - scopes: [orders]
  - prefix: /api
    upstream: http://api.internal
`)
	c, gc, err := LoadGateway(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:8443" || c.AdminListen != "127.0.0.1:9090" || c.AccessLogOn() {
		t.Errorf("got listen %q, admin %q, access log %v, want the file's", c.Listen, c.AdminListen, c.AccessLogOn())
	}
	want := []struct {
		name      string
		got, want any
	}{
		{"client secret", gc.ClientSecret, "s3cr3t"},
		{"auth method", gc.TokenEndpointAuthMethod, "client_secret_post"},
		{"roles claim", gc.RolesClaim, "realm_access.roles"},
		{"username claim", gc.UsernameClaim, "email"},
		{"types", fmt.Sprint(gc.AccessTokenTypes), "[at+jwt JWT]"},
		{"upstream timeout", gc.UpstreamTimeout, 5 * time.Second},
		{"rate limit", gc.RateLimit, gateway.RateLimit{Rate: 10, Burst: 20}},
		{"rate limit keys", gc.RateLimitKeys, 5000},
		{"introspection url", gc.Opaque.IntrospectionURL, "https://auth.example.com/introspect"},
		{"introspection ttl", gc.Opaque.CacheTTL, 10 * time.Second},
		{"cache size", gc.Opaque.CacheSize, 500},
		{"phantom issuer", gc.Opaque.Issuer, "https://gateway.internal"},
		{"phantom ttl", gc.Opaque.TTL, 30 * time.Second},
		{"jwks path", gc.Opaque.JWKSPath, "/.well-known/gw/jwks.json"},
		{"signing key", gc.Opaque.SigningKey.Public().(*ecdsa.PublicKey).Equal(&key.PublicKey), true},
		{"route name", gc.Routes[0].Name, "order"},
		{"route pattern", gc.Routes[0].Pattern, "GET /api/orders/{id}"},
		{"route audience", gc.Routes[0].Audience, "orders"},
		{"route timeout", gc.Routes[0].Timeout, 2 * time.Second},
		{"route rate limit", *gc.Routes[0].RateLimit, gateway.RateLimit{Rate: 1}},
		{"route rule", gc.Routes[0].Rules[0].Scopes[0], "orders"},
		{"second route", gc.Routes[1].Prefix, "/api"},
	}
	for _, w := range want {
		if w.got != w.want {
			t.Errorf("%s: got %v, want %v", w.name, w.got, w.want)
		}
	}
	// The transport trusts the CA file: it reaches the TLS server.
	resp, err := (&http.Client{Transport: gc.Transport}).Get(tlsSrv.URL)
	if err != nil {
		t.Fatalf("upstream transport: %v, want the CA of upstream_ca_file trusted", err)
	}
	resp.Body.Close()
}

// TestGatewayFileErrorsNameLines: a file with several mistakes gets one
// error naming each, with the line of its route or rule.
func TestGatewayFileErrorsNameLines(t *testing.T) {
	head := "issuer: http://as\naudience: [api]\nroutes:\n"
	tests := []struct {
		name, routes string
		want         []string
	}{
		{name: "route", routes: `  - prefix: /a
    upstream: http://a
  - prefix: b
    upstream: http://b
`, want: []string{`line 6: route 2 (b): prefix "b" must be an absolute, clean path`}},
		{name: "rule", routes: `  - prefix: /a
    upstream: http://a
    rules:
      - methods: [GET]
      - methods: [get]
`, want: []string{`line 8: route 1 (/a): rule 2: unknown method "get"`}},
		{name: "conflicting_patterns", routes: `  - pattern: /o/{id}/x
    upstream: http://a
  - pattern: /o/x/{id}
    upstream: http://b
`, want: []string{`line 6: route 2 (/o/x/{id}): pattern "/o/x/{id}" conflicts with pattern "/o/{id}/x"`}},
		{name: "prefix_and_pattern", routes: `  - prefix: /a
    pattern: GET /a/{id}
    upstream: http://a
`, want: []string{"line 4: route 1 (GET /a/{id}): set exactly one of prefix and pattern"}},
		{name: "several", routes: `  - prefix: /a
    upstream: ftp://a
  - name: named
    prefix: /b
    upstream: http://b
    rules:
      - public: true
        roles: [admin]
`, want: []string{`line 4: route 1 (/a): upstream "ftp://a" must be an http or https URL`,
			"line 10: route 2 (named): rule 1: a public rule cannot require roles or scopes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := LoadGateway(write(t, "gw.yaml", head+tt.routes))
			if err == nil {
				t.Fatal("got no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got %v, want it to contain %q", err, w)
				}
			}
		})
	}
	_, _, err := LoadGateway(write(t, "gw.yaml", "issuer: http://as\naudience: [api]\nroutes: []\nrate_limit: {rate: 1, burst: -1}\n"))
	if err == nil || !strings.Contains(err.Error(), "at least one route") || !strings.Contains(err.Error(), "rate_limit") {
		t.Errorf("got %v, want the errors outside routes too", err)
	}
}
