package jose

import (
	"fmt"

	gojose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
)

// Token types for the "typ" header.
const (
	TypeAccessToken = "at+jwt"       // RFC 9068 access tokens
	TypeJWT         = "JWT"          // ID tokens and other plain JWTs
	TypeSET         = "secevent+jwt" // RFC 8417 security event tokens
)

// Sign serializes claims (any value that marshals to a JSON object) as a
// compact JWS signed with key, with the "typ" header set to typ and the "kid"
// header set to the key's ID.
func Sign(key *PrivateKey, typ string, claims any) (string, error) {
	signer, err := gojose.NewSigner(
		gojose.SigningKey{Algorithm: gojose.SignatureAlgorithm(key.jwk.Algorithm), Key: key.jwk},
		(&gojose.SignerOptions{}).WithType(gojose.ContentType(typ)),
	)
	if err != nil {
		return "", fmt.Errorf("jose signer: %w", err)
	}
	raw, err := josejwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		return "", fmt.Errorf("sign %s: %w", typ, err)
	}
	return raw, nil
}
