package config

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/accounts"
	"github.com/gatehouse-dev/gatehouse/internal/jose"
	"github.com/gatehouse-dev/gatehouse/internal/keyring"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/sqlite"
)

func TestAuthServerOperationKeys(t *testing.T) {
	token := write(t, "admin.token", "an-admin-token-of-some-length\n")
	p := write(t, "as.yaml", `issuer: https://auth.example.com
store: sqlite:/tmp/x.db
admin_listen: 127.0.0.1:9901
admin_token_file: `+token+`
key_publish_delay: 20m
key_reload_interval: 15s
gc_interval: 5m
event_retention: 48h
ssf_push_pause_after: 30m
login_throttle:
  failures: 3
  window: 30m
  lock: 2s
  max_lock: 10m
`)
	c, err := LoadAuthServer(p)
	if err != nil {
		t.Fatal(err)
	}
	want := LoginThrottle{Failures: 3, Window: 30 * time.Minute, Lock: 2 * time.Second, MaxLock: 10 * time.Minute}
	if c.AdminListen != "127.0.0.1:9901" || c.AdminToken != "an-admin-token-of-some-length" ||
		c.KeyPublishDelay != 20*time.Minute || c.KeyReloadInterval != 15*time.Second || c.GCInterval != 5*time.Minute ||
		c.EventRetention != 48*time.Hour || c.SSFPushPauseAfter != 30*time.Minute || c.LoginThrottle != want {
		t.Fatalf("got %+v, want the file's values", c)
	}

	t.Setenv(EnvAdminToken, "token-from-the-environment")
	c, err = LoadAuthServer(write(t, "as2.yaml", "issuer: https://a\nstore: sqlite:x\n"))
	if err != nil || c.AdminListen != "127.0.0.1:9001" || c.AdminToken != "token-from-the-environment" {
		t.Fatalf("got %+v, %v, want the loopback admin listener and the token from the environment", c, err)
	}
	t.Setenv(EnvAdminToken, "short")
	if _, err := LoadAuthServer(write(t, "as3.yaml", "issuer: https://a\nstore: sqlite:x\n")); err == nil || !strings.Contains(err.Error(), "shorter") {
		t.Fatalf("got %v, want a short admin token refused", err)
	}
	if _, err := LoadAuthServer(write(t, "as4.yaml", "issuer: https://a\nstore: sqlite:x\nadmin_token: inline\n")); err == nil {
		t.Fatalf("got no error for an inline admin_token, want it unknown (tokens live in files or the environment)")
	}
}

func TestSeedClientJWKSAndTrustedProxy(t *testing.T) {
	key, _ := jose.GenerateKey(jose.ES256)
	jwks, _ := json.Marshal(jose.NewKeySet(key.Public()))
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := writeFile(p, body); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("signer.jwks.json", string(jwks))
	var asYAML map[string]any
	json.Unmarshal(jwks, &asYAML)
	k := asYAML["keys"].([]any)[0].(map[string]any)
	seedPath := write("seed.yaml", `clients:
  - id: from-file
    auth_method: private_key_jwt
    jwks_file: signer.jwks.json
    grants: [client_credentials]
  - id: inline-yaml
    auth_method: private_key_jwt
    grants: [client_credentials]
    jwks:
      keys:
        - kty: `+k["kty"].(string)+`
          crv: `+k["crv"].(string)+`
          x: `+k["x"].(string)+`
          y: `+k["y"].(string)+`
  - id: inline-json
    auth_method: private_key_jwt
    grants: [client_credentials]
    jwks: '`+string(jwks)+`'
  - id: gw
    secret: gateway-secret-0123456789
    trusted_proxy: true
    grants: [password]
`)
	seed, err := LoadSeed(seedPath)
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(t.Context(), filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	m := &accounts.Manager{Store: st, Secrets: keyring.Generate().Hasher(keyring.PurposeClientSecret)}
	if err := seed.Apply(t.Context(), m); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	for _, id := range []string{"from-file", "inline-yaml", "inline-json"} {
		c, err := st.GetClient(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		set, err := jose.ParseKeySet(c.JWKS)
		if err != nil || c.AuthMethod != store.AuthPrivateKeyJWT || len(set.Lookup(key.ID())) != 1 && set.Len() != 1 {
			t.Errorf("%s: got method %q, JWKS %s (%v), want private_key_jwt with the key", id, c.AuthMethod, c.JWKS, err)
		}
	}
	if c, _ := st.GetClient(t.Context(), "gw"); !c.TrustedProxy {
		t.Errorf("gw: got TrustedProxy false, want true")
	}
	bad, _ := ParseSeed([]byte("clients:\n  - id: x\n    auth_method: private_key_jwt\n    grants: [client_credentials]\n    jwks: '{}'\n    jwks_file: a.json\n"))
	if err := bad.Apply(t.Context(), m); err == nil {
		t.Errorf("got no error for jwks and jwks_file together")
	}
}
