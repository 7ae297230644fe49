package jose

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	gojose "github.com/go-jose/go-jose/v4"
)

// Signature algorithms Gatehouse signs with and accepts by default.
const (
	ES256 = "ES256"
	ES384 = "ES384"
	RS256 = "RS256"
	PS256 = "PS256"
	EdDSA = "EdDSA"
)

// asymmetric lists every algorithm a verifier may ever allow.
var asymmetric = []string{ES256, ES384, RS256, PS256, EdDSA}

// AllAlgorithms lists every algorithm a verifier may allow: the asymmetric
// ones Gatehouse knows.
func AllAlgorithms() []string { return slices.Clone(asymmetric) }

func asymmetricAlgorithms() []gojose.SignatureAlgorithm {
	out := make([]gojose.SignatureAlgorithm, len(asymmetric))
	for i, a := range asymmetric {
		out[i] = gojose.SignatureAlgorithm(a)
	}
	return out
}

// DefaultAlgorithms is the allow-list used when a caller names none.
var DefaultAlgorithms = []string{ES256, RS256, EdDSA}

// ErrAlgorithm reports an algorithm that is unknown or not allowed.
var ErrAlgorithm = errors.New("jose: algorithm not allowed")

// checkAlgorithms validates an allow-list and converts it for go-jose.
func checkAlgorithms(algs []string) ([]gojose.SignatureAlgorithm, error) {
	if len(algs) == 0 {
		algs = DefaultAlgorithms
	}
	out := make([]gojose.SignatureAlgorithm, 0, len(algs))
	for _, a := range algs {
		if !slices.Contains(asymmetric, a) {
			return nil, fmt.Errorf("%w: %q (allowed: %v)", ErrAlgorithm, a, asymmetric)
		}
		out = append(out, gojose.SignatureAlgorithm(a))
	}
	return out, nil
}

// PrivateKey is a signing key with its key ID and algorithm.
type PrivateKey struct {
	jwk gojose.JSONWebKey
}

// GenerateKey creates a fresh private key for alg (ES256, RS256 or EdDSA) with
// a key ID derived from its RFC 7638 thumbprint.
func GenerateKey(alg string) (*PrivateKey, error) {
	var key crypto.Signer
	var err error
	switch alg {
	case ES256:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case ES384:
		key, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case RS256, PS256:
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	case EdDSA:
		_, key, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil, fmt.Errorf("%w: cannot sign with %q", ErrAlgorithm, alg)
	}
	if err != nil {
		return nil, fmt.Errorf("generate %s key: %w", alg, err)
	}
	return newPrivateKey(key, alg)
}

// NewPrivateKey wraps an existing private key (ECDSA P-256 or P-384, RSA of
// at least 2048 bits, or Ed25519) with the algorithm it signs with (ES256,
// ES384, RS256, EdDSA) and a key ID derived from its RFC 7638 thumbprint.
func NewPrivateKey(key crypto.Signer) (*PrivateKey, error) {
	var alg string
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256():
			alg = ES256
		case elliptic.P384():
			alg = ES384
		}
	case *rsa.PrivateKey:
		if k.N.BitLen() >= 2048 {
			alg = RS256
		}
	case ed25519.PrivateKey:
		alg = EdDSA
	}
	if alg == "" {
		return nil, fmt.Errorf("%w: cannot sign with a %T of this size or curve", ErrAlgorithm, key)
	}
	return newPrivateKey(key, alg)
}

func newPrivateKey(key crypto.Signer, alg string) (*PrivateKey, error) {
	jwk := gojose.JSONWebKey{Key: key, Algorithm: alg, Use: "sig"}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("thumbprint: %w", err)
	}
	jwk.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	return &PrivateKey{jwk: jwk}, nil
}

// ParsePrivateKey reads a private key written by MarshalPrivate.
func ParsePrivateKey(data []byte) (*PrivateKey, error) {
	var jwk gojose.JSONWebKey
	if err := jwk.UnmarshalJSON(data); err != nil {
		return nil, fmt.Errorf("parse private key: %w", err)
	}
	if jwk.IsPublic() || !jwk.Valid() {
		return nil, errors.New("parse private key: not a valid private key")
	}
	if !slices.Contains(asymmetric, jwk.Algorithm) {
		return nil, fmt.Errorf("parse private key: %w: %q", ErrAlgorithm, jwk.Algorithm)
	}
	return &PrivateKey{jwk: jwk}, nil
}

// ID returns the key ID (the "kid" header of what it signs).
func (k *PrivateKey) ID() string { return k.jwk.KeyID }

// Algorithm returns the JOSE algorithm the key signs with.
func (k *PrivateKey) Algorithm() string { return k.jwk.Algorithm }

// MarshalPrivate returns the private key as a JWK. The result is a secret:
// seal it before it is stored.
func (k *PrivateKey) MarshalPrivate() ([]byte, error) { return k.jwk.MarshalJSON() }

// Public returns the public half of the key.
func (k *PrivateKey) Public() PublicKey { return PublicKey{jwk: k.jwk.Public()} }

// PublicKey is a verification key with its key ID and algorithm.
type PublicKey struct {
	jwk gojose.JSONWebKey
}

// ParsePublicKey reads one public JWK.
func ParsePublicKey(data []byte) (PublicKey, error) {
	var jwk gojose.JSONWebKey
	if err := jwk.UnmarshalJSON(data); err != nil {
		return PublicKey{}, fmt.Errorf("parse public key: %w", err)
	}
	if !jwk.IsPublic() || !jwk.Valid() {
		return PublicKey{}, errors.New("parse public key: not a valid public key")
	}
	return PublicKey{jwk: jwk}, nil
}

// ID returns the key ID.
func (k PublicKey) ID() string { return k.jwk.KeyID }

// Algorithm returns the algorithm the key is published for ("" if unstated).
func (k PublicKey) Algorithm() string { return k.jwk.Algorithm }

// MarshalJSON returns the key as a JWK.
func (k PublicKey) MarshalJSON() ([]byte, error) { return k.jwk.MarshalJSON() }

// KeySet is a static set of public keys, such as a parsed JWKS document. It
// implements Keys, so it serves both as a real key set and as a test double.
type KeySet struct {
	keys []PublicKey
}

// NewKeySet returns a set holding keys.
func NewKeySet(keys ...PublicKey) *KeySet { return &KeySet{keys: keys} }

// ParseKeySet parses a JWKS document (RFC 7517 §5). Keys that are not for
// signatures, not public, or of an unknown type are skipped.
func ParseKeySet(data []byte) (*KeySet, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse jwks: %w", err)
	}
	if doc.Keys == nil {
		return nil, errors.New(`parse jwks: no "keys" member`)
	}
	set := &KeySet{}
	for _, raw := range doc.Keys {
		var jwk gojose.JSONWebKey
		if err := jwk.UnmarshalJSON(raw); err != nil {
			continue // unknown key types are allowed in a JWKS (RFC 7517 §5)
		}
		if jwk.Use == "enc" || !jwk.IsPublic() || !jwk.Valid() {
			continue
		}
		set.keys = append(set.keys, PublicKey{jwk: jwk})
	}
	return set, nil
}

// MarshalJSON returns the set as a JWKS document.
func (s *KeySet) MarshalJSON() ([]byte, error) {
	keys := make([]gojose.JSONWebKey, len(s.keys))
	for i, k := range s.keys {
		keys[i] = k.jwk
	}
	return json.Marshal(gojose.JSONWebKeySet{Keys: keys})
}

// Len returns the number of keys in the set.
func (s *KeySet) Len() int { return len(s.keys) }

// Lookup returns the keys with that ID, or every key when kid is empty.
func (s *KeySet) Lookup(kid string) []PublicKey {
	if kid == "" {
		return s.keys
	}
	for _, k := range s.keys {
		if k.jwk.KeyID == kid {
			return []PublicKey{k}
		}
	}
	return nil
}
