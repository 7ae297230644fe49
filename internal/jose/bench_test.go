package jose_test

import (
	"testing"

	gojose "github.com/go-jose/go-jose/v4"

	"github.com/gatehouse-dev/gatehouse/internal/jose"
)

// BenchmarkRawES256Verify is the baseline for every ES256 verification
// benchmark: go-jose's signature check alone, on a token parsed once.
// BenchmarkVerifyES256 adds parsing and our checks; resource's
// BenchmarkVerifyES256Cold adds the Verifier around them.
func BenchmarkRawES256Verify(b *testing.B) {
	key := generateKey(b, jose.ES256)
	raw := mint(b, key, jose.TypeAccessToken, nil)
	jws, err := gojose.ParseSignedCompact(raw, []gojose.SignatureAlgorithm{gojose.ES256})
	if err != nil {
		b.Fatalf("ParseSignedCompact: %v", err)
	}
	var pub gojose.JSONWebKey
	if err := pub.UnmarshalJSON(publicJSON(b, key)); err != nil {
		b.Fatalf("unmarshal public JWK: %v", err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := jws.Verify(pub); err != nil {
			b.Fatalf("Verify: %v", err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	for _, alg := range []string{jose.ES256, jose.RS256, jose.EdDSA} {
		b.Run(alg, func(b *testing.B) {
			key := generateKey(b, alg)
			keys := jose.NewKeySet(key.Public())
			raw := mint(b, key, jose.TypeAccessToken, nil)
			want := testExpect()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := jose.Verify(b.Context(), raw, keys, want); err != nil {
					b.Fatalf("Verify: %v", err)
				}
			}
		})
	}
}

// BenchmarkVerifyRefused measures refusing a forged token that fails only
// the signature check: the most an attacker can make Verify spend.
func BenchmarkVerifyRefused(b *testing.B) {
	key := generateKey(b, jose.ES256)
	keys := jose.NewKeySet(key.Public())
	raw := tamper(b, mint(b, key, jose.TypeAccessToken, nil), 2, func(s []byte) []byte { s[0] ^= 1; return s })
	want := testExpect()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := jose.Verify(b.Context(), raw, keys, want); err == nil {
			b.Fatal("Verify accepted a forged token")
		}
	}
}
