package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gojose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/authserver"
	"github.com/gatehouse-dev/gatehouse/internal/devstack"
	"github.com/gatehouse-dev/gatehouse/internal/jose"
	"github.com/gatehouse-dev/gatehouse/internal/keyring"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// masterKeyFile is where devstack keeps the master key in its data folder.
const masterKeyFile = "master.key"

// TestRejectedTokens sends tokens that must be refused through the
// gateway: each one differs from a valid token of alice's in one way. Every
// one gets 401 invalid_token and none reaches a service. The valid token,
// and the same claims re-signed with the server's own key, get 200, so each
// refusal is for the one difference.
func TestRejectedTokens(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	valid := h.login(t, "cli", "alice").AccessToken
	header, claims := splitToken(t, valid)
	serverKey := h.signingKey(t)
	jwk := h.publishedKey(t)
	otherKey, err := jose.GenerateKey(jose.ES256)
	if err != nil {
		t.Fatal(err)
	}
	with := func(edit func(m map[string]any)) map[string]any {
		m := map[string]any{}
		for k, v := range claims {
			m[k] = v
		}
		edit(m)
		return m
	}
	sign := func(k *jose.PrivateKey, typ string, c map[string]any) string {
		raw, err := jose.Sign(k, typ, c)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	hs256 := func(secret []byte) string {
		return compact(t, map[string]any{"alg": "HS256", "typ": "at+jwt", "kid": header["kid"]}, claims, func(in []byte) []byte {
			m := hmac.New(sha256.New, secret)
			m.Write(in)
			return m.Sum(nil)
		})
	}
	pubJSON, err := json.Marshal(jwk)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(jwk.Key)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	hour := float64(time.Hour / time.Second)

	tests := []struct {
		name       string
		token      string
		wantStatus int
	}{
		{name: "valid", token: valid, wantStatus: http.StatusOK},
		{name: "resigned_by_server_key", token: sign(serverKey, jose.TypeAccessToken, claims), wantStatus: http.StatusOK},
		{name: "expired", token: h.expiredToken(t), wantStatus: http.StatusUnauthorized},
		{name: "expired_by_server_key", token: sign(serverKey, jose.TypeAccessToken, with(func(m map[string]any) {
			m["exp"] = m["iat"].(float64) - hour
			m["iat"] = m["iat"].(float64) - 2*hour
		})), wantStatus: http.StatusUnauthorized},
		{name: "no_exp", token: sign(serverKey, jose.TypeAccessToken, with(func(m map[string]any) { delete(m, "exp") })), wantStatus: http.StatusUnauthorized},
		{name: "not_yet_valid", token: sign(serverKey, jose.TypeAccessToken, with(func(m map[string]any) { m["nbf"] = m["iat"].(float64) + hour })), wantStatus: http.StatusUnauthorized},
		{name: "wrong_issuer", token: sign(serverKey, jose.TypeAccessToken, with(func(m map[string]any) { m["iss"] = "https://evil.example" })), wantStatus: http.StatusUnauthorized},
		{name: "wrong_type", token: sign(serverKey, jose.TypeJWT, claims), wantStatus: http.StatusUnauthorized},
		{name: "other_key", token: sign(otherKey, jose.TypeAccessToken, claims), wantStatus: http.StatusUnauthorized},
		{name: "other_key_with_server_kid", token: es256WithKid(t, header["kid"].(string), claims), wantStatus: http.StatusUnauthorized},
		{name: "alg_none", token: compact(t, map[string]any{"alg": "none", "typ": "at+jwt"}, claims, nil), wantStatus: http.StatusUnauthorized},
		{name: "alg_none_with_kid", token: compact(t, map[string]any{"alg": "none", "typ": "at+jwt", "kid": header["kid"]}, claims, nil), wantStatus: http.StatusUnauthorized},
		{name: "hs256_with_public_jwk", token: hs256(pubJSON), wantStatus: http.StatusUnauthorized},
		{name: "hs256_with_public_pem", token: hs256(pubPEM), wantStatus: http.StatusUnauthorized},
		{name: "roles_tampered", token: tamper(t, valid, func(m map[string]any) { m["roles"] = []string{"consumer", "admin"} }), wantStatus: http.StatusUnauthorized},
		{name: "signature_stripped", token: valid[:strings.LastIndex(valid, ".")+1], wantStatus: http.StatusUnauthorized},
		{name: "wrong_audience", token: h.login(t, "reports", "alice").AccessToken, wantStatus: http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, path := range []string{"/api/consumers/me", "/api/admin/orders"} {
				before := h.services.count("")
				r := h.call(t, http.MethodGet, path, bearer(tt.token), "", nil)
				want := tt.wantStatus
				if want == http.StatusOK && path == "/api/admin/orders" {
					want = http.StatusForbidden // alice is no admin
				}
				if r.status != want {
					t.Fatalf("%s: got %d %s, want %d", path, r.status, r.body, want)
				}
				if want == http.StatusOK {
					continue
				}
				if got := h.services.count("") - before; got != 0 {
					t.Errorf("%s: got %d requests at the services, want 0", path, got)
				}
				if want == http.StatusUnauthorized {
					if c := r.header.Get("WWW-Authenticate"); !strings.Contains(c, `error="invalid_token"`) {
						t.Errorf("%s: got WWW-Authenticate %q, want error=\"invalid_token\"", path, c)
					}
				}
			}
		})
	}
}

// splitToken returns the decoded header and claims of a compact JWS.
func splitToken(t *testing.T, raw string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not a compact JWS", raw)
	}
	for i, dst := range []*map[string]any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, dst); err != nil {
			t.Fatal(err)
		}
	}
	return header, claims
}

// compact serializes a JWS; sign nil leaves the signature empty.
func compact(t *testing.T, header, claims map[string]any, sign func(signingInput []byte) []byte) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	in := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	if sign == nil {
		return in + "."
	}
	return in + "." + base64.RawURLEncoding.EncodeToString(sign([]byte(in)))
}

// es256WithKid signs claims with a fresh key, naming the server's kid.
func es256WithKid(t *testing.T, kid string, claims map[string]any) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return compact(t, map[string]any{"alg": "ES256", "typ": "at+jwt", "kid": kid}, claims, func(in []byte) []byte {
		sum := sha256.Sum256(in)
		r, s, err := ecdsa.Sign(rand.Reader, k, sum[:])
		if err != nil {
			t.Fatal(err)
		}
		sig := make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
		return sig
	})
}

// tamper changes a signed token's claims and keeps its signature.
func tamper(t *testing.T, raw string, edit func(map[string]any)) string {
	t.Helper()
	_, claims := splitToken(t, raw)
	edit(claims)
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(raw, ".")
	return parts[0] + "." + base64.RawURLEncoding.EncodeToString(c) + "." + parts[2]
}

func (h *harness) keyring(t *testing.T) *keyring.Keyring {
	t.Helper()
	kr, err := keyring.LoadFile(filepath.Join(h.dataDir, masterKeyFile), false)
	if err != nil {
		t.Fatalf("load the stack's master key: %v", err)
	}
	return kr
}

// signingKey opens the private key the stack's authorization server signs
// with, from its store.
func (h *harness) signingKey(t *testing.T) *jose.PrivateKey {
	t.Helper()
	keys, err := h.Store.ListSigningKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(keys, func(k store.SigningKey) bool { return k.RetiredAt == nil })
	if i < 0 {
		t.Fatal("the stack has no active signing key")
	}
	priv, err := h.keyring(t).Open(keyring.PurposeSigningKey, keys[i].SealedPrivate, []byte(keys[i].ID))
	if err != nil {
		t.Fatal(err)
	}
	k, err := jose.ParsePrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// publishedKey reads the one key of the stack's JWKS, found by discovery.
func (h *harness) publishedKey(t *testing.T) gojose.JSONWebKey {
	t.Helper()
	var meta struct {
		JWKSURI string `json:"jwks_uri"`
	}
	getJSON(t, h.client, h.IssuerURL+"/.well-known/openid-configuration", &meta)
	var set gojose.JSONWebKeySet
	getJSON(t, h.client, meta.JWKSURI, &set)
	if len(set.Keys) != 1 {
		t.Fatalf("got %d keys in the JWKS, want 1", len(set.Keys))
	}
	return set.Keys[0]
}

func getJSON(t *testing.T, c *http.Client, url string, v any) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// expiredToken mints a token for alice with the stack's store and key but a
// clock an hour behind: a second authorization server over the same store,
// running the real minting code. The clock is right while the server
// starts, so it loads the stack's key rather than creating one.
func (h *harness) expiredToken(t *testing.T) string {
	t.Helper()
	var offset atomic.Int64
	as, err := authserver.New(t.Context(), authserver.Config{
		Issuer: h.IssuerURL, Store: h.Store, Keyring: h.keyring(t), Audience: []string{devstack.Audience},
		PasswordParams: cheap, Logger: slog.New(slog.DiscardHandler),
		Now: func() time.Time { return time.Now().Add(time.Duration(offset.Load())) },
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(as)
	defer srv.Close()
	conf := h.oauthConfig(t, "cli")
	conf.Endpoint.TokenURL = srv.URL + "/oauth2/token"
	mint := func() string {
		tok, err := conf.PasswordCredentialsToken(t.Context(), "alice", h.user(t, "alice").Password)
		if err != nil {
			t.Fatalf("password grant at the clock-shifted server: %v", err)
		}
		return tok.AccessToken
	}
	// The same server with a right clock mints a token the gateway takes.
	if r := h.call(t, http.MethodGet, "/api/consumers/me", bearer(mint()), "", nil); r.status != http.StatusOK {
		t.Fatalf("token of the second server: got %d %s, want 200", r.status, r.body)
	}
	offset.Store(int64(-time.Hour))
	return mint()
}

// refresher refreshes with x/oauth2, as a client library would.
func refresher(t *testing.T, conf *oauth2.Config) func(rt string) (*oauth2.Token, error) {
	return func(rt string) (*oauth2.Token, error) {
		return conf.TokenSource(t.Context(), &oauth2.Token{RefreshToken: rt}).Token()
	}
}
