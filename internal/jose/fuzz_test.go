package jose_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/jose"
)

// FuzzVerify feeds arbitrary strings to Verify with a real key set. Verify
// must not panic, every refusal must wrap ErrInvalid, and it may accept only
// the header and payload the key really signed. The seed corpus in
// testdata/fuzz/FuzzVerify holds a well-formed token under an unknown key, an
// alg "none" token, an HS256 token and garbage; a token signed by this run's
// key is added below.
func FuzzVerify(f *testing.F) {
	key := generateKey(f, jose.ES256)
	keys := jose.NewKeySet(key.Public())
	valid := mint(f, key, jose.TypeAccessToken, nil)
	signedHeader, signedPayload, _ := decodeCompact(valid)

	f.Add(valid)
	f.Add(algNoneToken(f))
	f.Add(hs256Token(f, key.ID(), publicJSON(f, key)))
	f.Add(tamper(f, valid, 2, func(b []byte) []byte { b[len(b)-1] ^= 0x80; return b }))

	f.Fuzz(func(t *testing.T, raw string) {
		c, err := jose.Verify(t.Context(), raw, keys, testExpect())
		if err != nil {
			if c != nil {
				t.Errorf("got claims %+v with error %v, want nil claims", c, err)
			}
			if !errors.Is(err, jose.ErrInvalid) {
				t.Errorf("got %v, want an error wrapping ErrInvalid", err)
			}
			return
		}
		// Base64 has more than one spelling of some byte strings, so
		// compare what was signed, not the spelling.
		header, payload, ok := decodeCompact(raw)
		if !ok || !bytes.Equal(header, signedHeader) || !bytes.Equal(payload, signedPayload) {
			t.Fatalf("accepted %q, which the key did not sign", raw)
		}
		if c == nil || c.Subject != "alice" {
			t.Fatalf("got claims %+v, want those of the signed token", c)
		}
	})
}

// decodeCompact returns the decoded header and payload of a compact JWS.
func decodeCompact(raw string) (header, payload []byte, ok bool) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return nil, nil, false
	}
	header, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return nil, nil, false
	}
	payload, err = base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, nil, false
	}
	return header, payload, true
}
