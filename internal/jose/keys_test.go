package jose_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/jose"
)

// TestNewPrivateKey: a key made elsewhere (read from a PEM file, say) signs
// with the algorithm of its type and verifies under its public half.
func TestNewPrivateKey(t *testing.T) {
	must := func(k crypto.Signer, err error) crypto.Signer {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		key     crypto.Signer
		wantAlg string // "" means refused
	}{
		{name: "p256", key: must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader)), wantAlg: jose.ES256},
		{name: "p384", key: must(ecdsa.GenerateKey(elliptic.P384(), rand.Reader)), wantAlg: jose.ES384},
		{name: "rsa2048", key: must(rsa.GenerateKey(rand.Reader, 2048)), wantAlg: jose.RS256},
		{name: "ed25519", key: edKey, wantAlg: jose.EdDSA},
		{name: "p224", key: must(ecdsa.GenerateKey(elliptic.P224(), rand.Reader))},
		{name: "rsa1024", key: must(rsa.GenerateKey(rand.Reader, 1024))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := jose.NewPrivateKey(tt.key)
			if tt.wantAlg == "" {
				if !errors.Is(err, jose.ErrAlgorithm) {
					t.Fatalf("got (%v, %v), want ErrAlgorithm", k, err)
				}
				return
			}
			if err != nil || k.Algorithm() != tt.wantAlg || k.ID() == "" {
				t.Fatalf("got (%v, %v), want a %s key with an ID", k, err, tt.wantAlg)
			}
			raw := mint(t, k, jose.TypeAccessToken, nil)
			want := testExpect()
			want.Algorithms = []string{tt.wantAlg}
			if _, err := jose.Verify(t.Context(), raw, jose.NewKeySet(k.Public()), want); err != nil {
				t.Fatalf("Verify: %v", err)
			}
		})
	}
}
