package accounts

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/gatehouse-dev/gatehouse/internal/jose"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// AuthMethods are the token_endpoint_auth_method values a client may be
// registered with (RFC 7591 §2, OpenID Connect Core §9).
var AuthMethods = []string{store.AuthClientSecretBasic, store.AuthClientSecretPost, store.AuthPrivateKeyJWT,
	store.AuthTLSClientAuth, store.AuthNone}

// MaxJWKSBytes bounds a client's registered JWKS.
const MaxJWKSBytes = 64 << 10

// checkAuthMethod checks that the method, the client type, the secret, the
// JWKS and the trusted-proxy flag fit together.
func checkAuthMethod(spec ClientSpec) error {
	m := spec.AuthMethod
	switch {
	case m != "" && !slices.Contains(AuthMethods, m):
		return fmt.Errorf("%w client %q: auth method %q is not supported (supported: %v)", ErrInvalid, spec.ID, m, AuthMethods)
	case spec.Public && m != "" && m != store.AuthNone:
		return fmt.Errorf("%w client %q: a public client authenticates with %q only", ErrInvalid, spec.ID, store.AuthNone)
	case !spec.Public && m == store.AuthNone:
		return fmt.Errorf("%w client %q: auth method %q is for public clients", ErrInvalid, spec.ID, store.AuthNone)
	case (m == store.AuthPrivateKeyJWT || m == store.AuthTLSClientAuth) && spec.Secret != "":
		return fmt.Errorf("%w client %q: a %s client has no secret", ErrInvalid, spec.ID, m)
	case m == store.AuthPrivateKeyJWT && len(spec.JWKS) == 0:
		return fmt.Errorf("%w client %q: a %s client needs a JWKS", ErrInvalid, spec.ID, m)
	case m != store.AuthPrivateKeyJWT && len(spec.JWKS) != 0:
		return fmt.Errorf("%w client %q: a JWKS is only for %s clients", ErrInvalid, spec.ID, store.AuthPrivateKeyJWT)
	case spec.Public && spec.TrustedProxy:
		return fmt.Errorf("%w client %q: a public client cannot be a trusted proxy", ErrInvalid, spec.ID)
	}
	return nil
}

// publicJWKS checks a private_key_jwt client's JWKS and returns it
// normalized: its public signing keys only. A document holding private key
// material is refused rather than silently stripped, so whoever registered it
// learns that the key must be replaced.
func publicJWKS(spec ClientSpec) ([]byte, error) {
	if len(spec.JWKS) == 0 {
		return nil, nil
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w client %q: jwks: %s", ErrInvalid, spec.ID, fmt.Sprintf(format, args...))
	}
	if len(spec.JWKS) > MaxJWKSBytes {
		return nil, bad("larger than %d bytes", MaxJWKSBytes)
	}
	var raw struct {
		Keys []map[string]json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(spec.JWKS, &raw); err != nil {
		return nil, bad("not a JWKS document: %v", err)
	}
	for _, k := range raw.Keys {
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
			if _, ok := k[private]; ok {
				return nil, bad("holds private key material (%q); register the public keys only", private)
			}
		}
	}
	set, err := jose.ParseKeySet(spec.JWKS)
	if err != nil {
		return nil, bad("%v", err)
	}
	if set.Len() == 0 {
		return nil, bad("no usable public signing key")
	}
	return json.Marshal(set)
}
