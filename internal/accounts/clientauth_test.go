package accounts

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/jose"
	"github.com/gatehouse-dev/gatehouse/internal/keyring"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/sqlite"
)

func TestClientAuthMethodRules(t *testing.T) {
	key, _ := jose.GenerateKey(jose.ES256)
	jwks, _ := json.Marshal(jose.NewKeySet(key.Public()))
	priv, _ := key.MarshalPrivate()
	privateJWKS := []byte(`{"keys":[` + string(priv) + `]}`)
	grants := []string{"client_credentials"}
	tests := []struct {
		name    string
		spec    ClientSpec
		wantErr string // "" for success
	}{
		{"default method", ClientSpec{ID: "a"}, ""},
		{"basic", ClientSpec{ID: "a", AuthMethod: store.AuthClientSecretBasic}, ""},
		{"post", ClientSpec{ID: "a", AuthMethod: store.AuthClientSecretPost}, ""},
		{"private_key_jwt", ClientSpec{ID: "a", AuthMethod: store.AuthPrivateKeyJWT, JWKS: jwks}, ""},
		{"public none", ClientSpec{ID: "a", Public: true, AuthMethod: store.AuthNone,
			Grants: []string{"authorization_code"}, RedirectURIs: []string{"http://127.0.0.1:5000/cb"}}, ""},
		{"unknown method", ClientSpec{ID: "a", AuthMethod: "self_signed_tls_client_auth"}, "not supported"},
		{"tls_client_auth", ClientSpec{ID: "a", AuthMethod: store.AuthTLSClientAuth, Grants: []string{"client_credentials"}}, ""},
		{"tls_client_auth with a secret", ClientSpec{ID: "a", AuthMethod: store.AuthTLSClientAuth, Secret: strings.Repeat("s", 20)}, "no secret"},
		{"public with a secret method", ClientSpec{ID: "a", Public: true, AuthMethod: store.AuthClientSecretBasic}, "public client"},
		{"none makes the client public", ClientSpec{ID: "a", AuthMethod: store.AuthNone}, "a public client may only have the grants"},
		{"private_key_jwt with a secret", ClientSpec{ID: "a", AuthMethod: store.AuthPrivateKeyJWT, JWKS: jwks, Secret: strings.Repeat("s", 20)}, "no secret"},
		{"private_key_jwt without JWKS", ClientSpec{ID: "a", AuthMethod: store.AuthPrivateKeyJWT}, "needs a JWKS"},
		{"JWKS for a secret client", ClientSpec{ID: "a", JWKS: jwks}, "only for"},
		{"JWKS with a private key", ClientSpec{ID: "a", AuthMethod: store.AuthPrivateKeyJWT, JWKS: privateJWKS}, "private key material"},
		{"JWKS not JSON", ClientSpec{ID: "a", AuthMethod: store.AuthPrivateKeyJWT, JWKS: []byte("{")}, "not a JWKS"},
		{"JWKS without keys", ClientSpec{ID: "a", AuthMethod: store.AuthPrivateKeyJWT, JWKS: []byte(`{"keys":[]}`)}, "no usable"},
		{"public trusted proxy", ClientSpec{ID: "a", Public: true, TrustedProxy: true}, "trusted proxy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "db"))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			m := &Manager{Store: st, Secrets: keyring.Generate().Hasher(keyring.PurposeClientSecret)}
			if tt.spec.Grants == nil {
				tt.spec.Grants = grants
			}
			c, secret, err := m.AddClient(t.Context(), tt.spec)
			if tt.wantErr != "" {
				if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want ErrInvalid saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("got %v, want nil", err)
			}
			want := tt.spec.AuthMethod
			if want == "" {
				want = store.AuthClientSecretBasic // the default is stored explicitly
			}
			if c.AuthMethod != want {
				t.Errorf("AuthMethod: got %q, want %q", c.AuthMethod, want)
			}
			if tt.spec.AuthMethod == store.AuthPrivateKeyJWT {
				set, err := jose.ParseKeySet(c.JWKS)
				if secret != "" || c.SecretHash != "" || err != nil || set.Len() != 1 {
					t.Errorf("private_key_jwt client: got secret %q, hash %q, JWKS %s (%v), want no secret and the key", secret, c.SecretHash, c.JWKS, err)
				}
			}
			if tt.spec.AuthMethod == store.AuthTLSClientAuth && (secret != "" || c.SecretHash != "") {
				t.Errorf("tls_client_auth client: got secret %q, hash %q, want none", secret, c.SecretHash)
			}
		})
	}
}
