package jose_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	gojose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"

	"github.com/gatehouse-dev/gatehouse/internal/jose"
)

const (
	testIssuer   = "https://issuer.example"
	testAudience = "https://api.example"
)

// testNow is the clock every test in this package verifies against.
var testNow = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func generateKey(t testing.TB, alg string) *jose.PrivateKey {
	t.Helper()
	key, err := jose.GenerateKey(alg)
	if err != nil {
		t.Fatalf("GenerateKey(%s): %v", alg, err)
	}
	return key
}

// testClaims are valid claims for testExpect at testNow.
func testClaims() jose.Claims {
	return jose.Claims{
		Issuer:    testIssuer,
		Subject:   "alice",
		Audience:  jose.Audience{testAudience},
		Expiry:    jose.NewNumericDate(testNow.Add(5 * time.Minute)),
		NotBefore: jose.NewNumericDate(testNow),
		IssuedAt:  jose.NewNumericDate(testNow),
		Scope:     "orders:read",
	}
}

func testExpect() jose.Expect {
	return jose.Expect{
		Issuer:   testIssuer,
		Audience: []string{testAudience},
		Types:    []string{jose.TypeAccessToken},
		Now:      testNow,
	}
}

// mint signs testClaims, changed by edit, with key.
func mint(t testing.TB, key *jose.PrivateKey, typ string, edit func(*jose.Claims)) string {
	t.Helper()
	c := testClaims()
	if edit != nil {
		edit(&c)
	}
	raw, err := jose.Sign(key, typ, c)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return raw
}

// mintWithoutType signs testClaims with go-jose directly, so the token has
// no "typ" header at all (jose.Sign always sets one).
func mintWithoutType(t testing.TB, key *jose.PrivateKey) string {
	t.Helper()
	data, err := key.MarshalPrivate()
	if err != nil {
		t.Fatalf("MarshalPrivate: %v", err)
	}
	var jwk gojose.JSONWebKey
	if err := jwk.UnmarshalJSON(data); err != nil {
		t.Fatalf("unmarshal private JWK: %v", err)
	}
	signer, err := gojose.NewSigner(gojose.SigningKey{Algorithm: gojose.SignatureAlgorithm(key.Algorithm()), Key: jwk}, nil)
	if err != nil {
		t.Fatalf("NewSigner: %v", err)
	}
	raw, err := josejwt.Signed(signer).Claims(testClaims()).Serialize()
	if err != nil {
		t.Fatalf("Serialize: %v", err)
	}
	return raw
}

func b64JSON(t testing.TB, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return base64.RawURLEncoding.EncodeToString(data)
}

// algNoneToken is an unsigned token (RFC 7519 §6) carrying valid claims.
func algNoneToken(t testing.TB) string {
	t.Helper()
	return b64JSON(t, map[string]string{"alg": "none", "typ": "at+jwt"}) + "." + b64JSON(t, testClaims()) + "."
}

// hs256Token is the algorithm-confusion attack: an HS256 token whose HMAC
// secret is the verifier's public key, with the kid of that key.
func hs256Token(t testing.TB, kid string, secret []byte) string {
	t.Helper()
	input := b64JSON(t, map[string]string{"alg": "HS256", "typ": "at+jwt", "kid": kid}) + "." + b64JSON(t, testClaims())
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(input))
	return input + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// publicPEM returns the PKIX PEM encoding of key's public half: the bytes an
// attacker would use as the HMAC secret.
func publicPEM(t testing.TB, key *jose.PrivateKey) []byte {
	t.Helper()
	data, err := key.Public().MarshalJSON()
	if err != nil {
		t.Fatalf("MarshalJSON: %v", err)
	}
	var jwk gojose.JSONWebKey
	if err := jwk.UnmarshalJSON(data); err != nil {
		t.Fatalf("unmarshal public JWK: %v", err)
	}
	der, err := x509.MarshalPKIXPublicKey(jwk.Key)
	if err != nil {
		t.Fatalf("MarshalPKIXPublicKey: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func publicJSON(t testing.TB, key *jose.PrivateKey) []byte {
	t.Helper()
	data, err := key.Public().MarshalJSON()
	if err != nil {
		t.Fatalf("MarshalJSON: %v", err)
	}
	return data
}

// tamper replaces part i (0 header, 1 payload, 2 signature) of a compact
// JWS with the result of f on its decoded bytes.
func tamper(t testing.TB, raw string, i int, f func([]byte) []byte) string {
	t.Helper()
	parts := strings.Split(raw, ".")
	data, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatalf("decode part %d: %v", i, err)
	}
	parts[i] = base64.RawURLEncoding.EncodeToString(f(data))
	return strings.Join(parts, ".")
}

// keysFunc adapts a function to jose.Keys.
type keysFunc func(ctx context.Context, kid string) ([]jose.PublicKey, error)

func (f keysFunc) VerificationKeys(ctx context.Context, kid string) ([]jose.PublicKey, error) {
	return f(ctx, kid)
}

type verifyCase struct {
	name   string
	token  string
	keys   jose.Keys // if nil, the set of the test's keys
	expect func(*jose.Expect)
	// wantErr is the sentinel the error must wrap; nil means accepted.
	wantErr error
	// config marks errors that must not wrap ErrInvalid: they are the
	// caller's fault, not the token's.
	config bool
}

func (tc verifyCase) run(t *testing.T, keys jose.Keys) {
	if tc.keys != nil {
		keys = tc.keys
	}
	want := testExpect()
	if tc.expect != nil {
		tc.expect(&want)
	}
	c, err := jose.Verify(t.Context(), tc.token, keys, want)
	if tc.wantErr == nil {
		if err != nil {
			t.Fatalf("got %v, want nil", err)
		}
		if c.Subject != "alice" {
			t.Errorf("got sub %q, want %q", c.Subject, "alice")
		}
		if len(c.Raw) == 0 {
			t.Errorf("got empty Raw, want the payload")
		}
		return
	}
	if !errors.Is(err, tc.wantErr) {
		t.Fatalf("got %v, want %v", err, tc.wantErr)
	}
	if c != nil {
		t.Errorf("got claims %+v, want nil", c)
	}
	if got, want := errors.Is(err, jose.ErrInvalid), !tc.config; got != want {
		t.Errorf("got errors.Is(%v, ErrInvalid) = %v, want %v", err, got, want)
	}
}

func TestVerify(t *testing.T) {
	es := generateKey(t, jose.ES256)
	rs := generateKey(t, jose.RS256)
	ed := generateKey(t, jose.EdDSA)
	es384 := generateKey(t, jose.ES384)
	stranger := generateKey(t, jose.ES256) // not in the key set
	keys := jose.NewKeySet(es.Public(), rs.Public(), ed.Public(), es384.Public())

	valid := mint(t, es, jose.TypeAccessToken, nil)
	at := func(d time.Duration) *jose.NumericDate { return jose.NewNumericDate(testNow.Add(d)) }

	tests := []verifyCase{
		{name: "ES256", token: valid},
		{name: "RS256", token: mint(t, rs, jose.TypeAccessToken, nil)},
		{name: "EdDSA", token: mint(t, ed, jose.TypeAccessToken, nil)},
		{
			name:  "expired within leeway",
			token: mint(t, es, jose.TypeAccessToken, func(c *jose.Claims) { c.Expiry = at(-10 * time.Second) }),
		},
		{
			name:    "expired beyond leeway",
			token:   mint(t, es, jose.TypeAccessToken, func(c *jose.Claims) { c.Expiry = at(-time.Minute) }),
			wantErr: jose.ErrExpired,
		},
		{
			name:    "expired beyond custom leeway",
			token:   mint(t, es, jose.TypeAccessToken, func(c *jose.Claims) { c.Expiry = at(-10 * time.Second) }),
			expect:  func(e *jose.Expect) { e.Leeway = 5 * time.Second },
			wantErr: jose.ErrExpired,
		},
		{
			name:   "expired long ago, expiry not checked",
			token:  mint(t, es, jose.TypeAccessToken, func(c *jose.Claims) { c.Expiry = at(-24 * time.Hour) }),
			expect: func(e *jose.Expect) { e.SkipExpiryCheck = true },
		},
		{
			name:    "no exp",
			token:   mint(t, es, jose.TypeAccessToken, func(c *jose.Claims) { c.Expiry = nil }),
			wantErr: jose.ErrMalformed,
		},
		{
			name:    "no exp, expiry not checked",
			token:   mint(t, es, jose.TypeAccessToken, func(c *jose.Claims) { c.Expiry = nil }),
			expect:  func(e *jose.Expect) { e.SkipExpiryCheck = true },
			wantErr: jose.ErrMalformed,
		},
		{
			name:  "nbf within leeway",
			token: mint(t, es, jose.TypeAccessToken, func(c *jose.Claims) { c.NotBefore = at(10 * time.Second) }),
		},
		{
			name:    "nbf in the future",
			token:   mint(t, es, jose.TypeAccessToken, func(c *jose.Claims) { c.NotBefore = at(2 * time.Minute) }),
			wantErr: jose.ErrNotYetValid,
		},
		{
			name:    "iat in the future",
			token:   mint(t, es, jose.TypeAccessToken, func(c *jose.Claims) { c.IssuedAt = at(2 * time.Minute) }),
			wantErr: jose.ErrNotYetValid,
		},
		{
			name:    "wrong iss",
			token:   mint(t, es, jose.TypeAccessToken, func(c *jose.Claims) { c.Issuer = "https://evil.example" }),
			wantErr: jose.ErrIssuer,
		},
		{
			name:    "no iss",
			token:   mint(t, es, jose.TypeAccessToken, func(c *jose.Claims) { c.Issuer = "" }),
			wantErr: jose.ErrIssuer,
		},
		{
			name:    "wrong aud",
			token:   mint(t, es, jose.TypeAccessToken, func(c *jose.Claims) { c.Audience = jose.Audience{"https://other.example"} }),
			wantErr: jose.ErrAudience,
		},
		{
			name:    "no aud",
			token:   mint(t, es, jose.TypeAccessToken, func(c *jose.Claims) { c.Audience = nil }),
			wantErr: jose.ErrAudience,
		},
		{
			name:  "aud array containing ours",
			token: mint(t, es, jose.TypeAccessToken, func(c *jose.Claims) { c.Audience = jose.Audience{"https://other.example", testAudience} }),
		},
		{
			name:   "one of several expected audiences",
			token:  valid,
			expect: func(e *jose.Expect) { e.Audience = []string{"https://other.example", testAudience} },
		},
		{name: "typ application/at+jwt", token: mint(t, es, "application/at+jwt", nil)},
		{name: "typ in upper case", token: mint(t, es, "AT+JWT", nil)},
		{
			name:   "expected type with application/ prefix",
			token:  valid,
			expect: func(e *jose.Expect) { e.Types = []string{"application/at+jwt"} },
		},
		{name: "typ JWT", token: mint(t, es, jose.TypeJWT, nil), wantErr: jose.ErrType},
		{name: "typ empty", token: mint(t, es, "", nil), wantErr: jose.ErrType},
		{name: "typ missing", token: mintWithoutType(t, es), wantErr: jose.ErrType},
		{name: "alg none", token: algNoneToken(t), wantErr: jose.ErrAlgorithm},
		{name: "HS256 keyed with public JWK", token: hs256Token(t, es.ID(), publicJSON(t, es)), wantErr: jose.ErrAlgorithm},
		{name: "HS256 keyed with public PEM", token: hs256Token(t, rs.ID(), publicPEM(t, rs)), wantErr: jose.ErrAlgorithm},
		{
			name:    "RS256 allow-list rejects ES256",
			token:   valid,
			expect:  func(e *jose.Expect) { e.Algorithms = []string{jose.RS256} },
			wantErr: jose.ErrAlgorithm,
		},
		{
			name:   "RS256 allow-list accepts RS256",
			token:  mint(t, rs, jose.TypeAccessToken, nil),
			expect: func(e *jose.Expect) { e.Algorithms = []string{jose.RS256} },
		},
		{name: "ES384 not allowed by default", token: mint(t, es384, jose.TypeAccessToken, nil), wantErr: jose.ErrAlgorithm},
		{
			name:   "ES384 allowed when listed",
			token:  mint(t, es384, jose.TypeAccessToken, nil),
			expect: func(e *jose.Expect) { e.Algorithms = []string{jose.ES384} },
		},
		{
			name:    "tampered signature",
			token:   tamper(t, valid, 2, func(b []byte) []byte { b[0] ^= 1; return b }),
			wantErr: jose.ErrSignature,
		},
		{
			name: "tampered payload",
			token: tamper(t, valid, 1, func([]byte) []byte {
				c := testClaims()
				c.Subject = "mallory"
				data, _ := json.Marshal(c)
				return data
			}),
			wantErr: jose.ErrSignature,
		},
		{
			name:    "truncated signature",
			token:   tamper(t, valid, 2, func(b []byte) []byte { return b[:len(b)-1] }),
			wantErr: jose.ErrSignature,
		},
		{name: "unknown kid", token: mint(t, stranger, jose.TypeAccessToken, nil), wantErr: jose.ErrUnknownKey},
		{
			name:    "oversized token",
			token:   mint(t, es, jose.TypeAccessToken, func(c *jose.Claims) { c.ID = strings.Repeat("x", 16<<10) }),
			wantErr: jose.ErrMalformed,
		},
		{name: "empty", token: "", wantErr: jose.ErrMalformed},
		{name: "garbage", token: "not a token", wantErr: jose.ErrMalformed},
		{name: "two parts", token: valid[:strings.LastIndexByte(valid, '.')], wantErr: jose.ErrMalformed},
		{name: "payload not JSON", token: tamper(t, valid, 1, func([]byte) []byte { return []byte("[]") }), wantErr: jose.ErrMalformed},
		{
			name:    "HS256 allow-list is a configuration error",
			token:   valid,
			expect:  func(e *jose.Expect) { e.Algorithms = []string{"HS256"} },
			wantErr: jose.ErrAlgorithm,
			config:  true,
		},
		{
			name:    "none allow-list is a configuration error",
			token:   valid,
			expect:  func(e *jose.Expect) { e.Algorithms = []string{"none"} },
			wantErr: jose.ErrAlgorithm,
			config:  true,
		},
		{
			name:  "keys error returned as is",
			token: valid,
			keys: keysFunc(func(context.Context, string) ([]jose.PublicKey, error) {
				return nil, context.DeadlineExceeded
			}),
			wantErr: context.DeadlineExceeded,
			config:  true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, keys) })
	}
}

func TestVerifyExpectRequired(t *testing.T) {
	key := generateKey(t, jose.ES256)
	keys := jose.NewKeySet(key.Public())
	raw := mint(t, key, jose.TypeAccessToken, nil)
	tests := []struct {
		name string
		edit func(*jose.Expect)
	}{
		{name: "no Issuer", edit: func(e *jose.Expect) { e.Issuer = "" }},
		{name: "no Audience", edit: func(e *jose.Expect) { e.Audience = nil }},
		{name: "no Types", edit: func(e *jose.Expect) { e.Types = nil }},
		{name: "zero Expect", edit: func(e *jose.Expect) { *e = jose.Expect{} }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := testExpect()
			tc.edit(&want)
			c, err := jose.Verify(t.Context(), raw, keys, want)
			if err == nil || c != nil {
				t.Fatalf("got (%v, %v), want a configuration error", c, err)
			}
			if errors.Is(err, jose.ErrInvalid) {
				t.Errorf("got %v, want an error not wrapping ErrInvalid", err)
			}
		})
	}
}

// TestVerifyChecksClaimsBeforeKeys checks that tokens failing the cheap
// checks never reach the key set, so they cannot trigger a JWKS fetch.
func TestVerifyChecksClaimsBeforeKeys(t *testing.T) {
	key := generateKey(t, jose.ES256)
	keys := keysFunc(func(context.Context, string) ([]jose.PublicKey, error) {
		t.Error("keys consulted, want the token refused first")
		return nil, nil
	})
	tests := []struct {
		name    string
		token   string
		wantErr error
	}{
		{name: "alg none", token: algNoneToken(t), wantErr: jose.ErrAlgorithm},
		{name: "typ", token: mint(t, key, jose.TypeJWT, nil), wantErr: jose.ErrType},
		{name: "iss", token: mint(t, key, jose.TypeAccessToken, func(c *jose.Claims) { c.Issuer = "x" }), wantErr: jose.ErrIssuer},
		{name: "aud", token: mint(t, key, jose.TypeAccessToken, func(c *jose.Claims) { c.Audience = nil }), wantErr: jose.ErrAudience},
		{
			name:    "exp",
			token:   mint(t, key, jose.TypeAccessToken, func(c *jose.Claims) { c.Expiry = jose.NewNumericDate(testNow.Add(-time.Hour)) }),
			wantErr: jose.ErrExpired,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := jose.Verify(t.Context(), tc.token, keys, testExpect())
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("got %v, want %v", err, tc.wantErr)
			}
		})
	}
}

func TestVerifyClaims(t *testing.T) {
	key := generateKey(t, jose.ES256)
	in := testClaims()
	in.ID = "t-1"
	in.ClientID = "orders"
	in.SessionID = "s-1"
	in.Username = "alice.a"
	in.Roles = []string{"admin", "user"}
	raw, err := jose.Sign(key, jose.TypeAccessToken, in)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	got, err := jose.Verify(t.Context(), raw, jose.NewKeySet(key.Public()), testExpect())
	if err != nil {
		t.Fatalf("got %v, want nil", err)
	}
	gotJSON, _ := json.Marshal(got)
	wantJSON, _ := json.Marshal(in)
	if string(gotJSON) != string(wantJSON) {
		t.Errorf("got %s, want %s", gotJSON, wantJSON)
	}
	if got.KeyID != key.ID() {
		t.Errorf("got KeyID %q, want the header kid %q", got.KeyID, key.ID())
	}
	var raws map[string]any
	if err := json.Unmarshal(got.Raw, &raws); err != nil || raws["client_id"] != "orders" {
		t.Errorf("got Raw %s, want the signed payload", got.Raw)
	}
}

func TestParseKeySet(t *testing.T) {
	es := generateKey(t, jose.ES256)
	rs := generateKey(t, jose.RS256)
	private, err := es.MarshalPrivate()
	if err != nil {
		t.Fatalf("MarshalPrivate: %v", err)
	}
	pub := func(k *jose.PrivateKey) string { return string(publicJSON(t, k)) }
	encKey := strings.Replace(pub(rs), `"use":"sig"`, `"use":"enc"`, 1)
	tests := []struct {
		name    string
		doc     string
		wantIDs []string
		wantErr bool
	}{
		{name: "two keys", doc: `{"keys":[` + pub(es) + `,` + pub(rs) + `]}`, wantIDs: []string{es.ID(), rs.ID()}},
		{name: "empty", doc: `{"keys":[]}`},
		{name: "private key skipped", doc: `{"keys":[` + string(private) + `,` + pub(rs) + `]}`, wantIDs: []string{rs.ID()}},
		{name: "encryption key skipped", doc: `{"keys":[` + encKey + `,` + pub(es) + `]}`, wantIDs: []string{es.ID()}},
		{name: "unknown key type skipped", doc: `{"keys":[{"kty":"XYZ","kid":"x"},` + pub(es) + `]}`, wantIDs: []string{es.ID()}},
		{name: "symmetric key skipped", doc: `{"keys":[{"kty":"oct","kid":"h","k":"c2VjcmV0"},` + pub(es) + `]}`, wantIDs: []string{es.ID()}},
		{name: "no keys member", doc: `{}`, wantErr: true},
		{name: "not JSON", doc: `<html>`, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			set, err := jose.ParseKeySet([]byte(tc.doc))
			if tc.wantErr {
				if err == nil {
					t.Fatalf("got nil error, want one")
				}
				return
			}
			if err != nil {
				t.Fatalf("got %v, want nil", err)
			}
			var got []string
			for _, k := range set.Lookup("") {
				got = append(got, k.ID())
			}
			if strings.Join(got, ",") != strings.Join(tc.wantIDs, ",") {
				t.Errorf("got kids %v, want %v", got, tc.wantIDs)
			}
		})
	}
}
