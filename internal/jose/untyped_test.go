package jose

import (
	"context"
	"errors"
	"testing"
	"time"

	gojose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
)

// signWithHeader signs claims with key and exactly the given "typ" header
// (none when typ is nil), bypassing Sign, which always sets one.
func signWithHeader(t *testing.T, key *PrivateKey, typ *string, claims Claims) string {
	t.Helper()
	opts := &gojose.SignerOptions{}
	if typ != nil {
		opts = opts.WithType(gojose.ContentType(*typ))
	}
	signer, err := gojose.NewSigner(gojose.SigningKey{Algorithm: gojose.SignatureAlgorithm(key.Algorithm()), Key: key.jwk}, opts)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := josejwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestUntypedTokens(t *testing.T) {
	key, err := GenerateKey(ES256)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	claims := Claims{Issuer: "client", Subject: "client", Audience: Audience{"https://as"}, Expiry: NewNumericDate(now.Add(time.Minute))}
	jwt, at, empty := TypeJWT, TypeAccessToken, ""
	keys := NewKeySet(key.Public())
	access := Expect{Issuer: "client", Audience: []string{"https://as"}, Types: []string{TypeAccessToken}}
	assertion := Expect{Issuer: "client", Audience: []string{"https://as"}, Types: []string{TypeJWT}, AllowUntyped: true}
	tests := []struct {
		name    string
		typ     *string
		want    Expect
		wantErr error
	}{
		{"access token without typ", nil, access, ErrType},
		{"access token typed JWT", &jwt, access, ErrType},
		{"access token with empty typ", &empty, access, ErrType},
		{"access token typed at+jwt", &at, access, nil},
		{"assertion without typ", nil, assertion, nil},
		{"assertion typed JWT", &jwt, assertion, nil},
		{"assertion typed at+jwt", &at, assertion, ErrType},
		{"assertion with empty typ", &empty, assertion, ErrType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Verify(context.Background(), signWithHeader(t, key, tt.typ, claims), keys, tt.want)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("got %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestUnverifiedIssuer(t *testing.T) {
	key, _ := GenerateKey(EdDSA)
	raw, err := Sign(key, TypeJWT, Claims{Issuer: "billing", Expiry: NewNumericDate(time.Now())})
	if err != nil {
		t.Fatal(err)
	}
	if iss, err := UnverifiedIssuer(raw); err != nil || iss != "billing" {
		t.Fatalf("got %q, %v, want billing", iss, err)
	}
	noIss, _ := Sign(key, TypeJWT, Claims{Subject: "x"})
	for _, bad := range []string{"", "a.b.c", "not-a-jwt", noIss, string(make([]byte, maxTokenSize+1))} {
		if _, err := UnverifiedIssuer(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("UnverifiedIssuer(%.20q): got %v, want ErrMalformed", bad, err)
		}
	}
}
