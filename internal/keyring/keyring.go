// Package keyring holds the authorization server's master key and what is
// derived from it: keyed hashes (HMAC-SHA-256) for secrets that are stored only
// hashed — refresh tokens, opaque access tokens, client secrets — and
// authenticated encryption (AES-256-GCM) for secrets that must be recovered,
// such as private signing keys at rest.
//
// Sub-keys are derived per purpose with HKDF-SHA-256 (RFC 5869), so a hash
// made for one purpose never verifies for another. The master key comes from a
// file (generated on first use in development) or from the environment.
package keyring

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// KeySize is the size of a master key in bytes.
const KeySize = 32

// EnvMasterKey is the environment variable that may hold the master key,
// base64-encoded (standard or URL alphabet).
const EnvMasterKey = "GATEHOUSE_MASTER_KEY"

// Purposes of keyed hashes and sealed data. Each gets its own derived key.
const (
	PurposeRefreshToken = "refresh-token"
	PurposeAccessToken  = "access-token"
	PurposeClientSecret = "client-secret"
	PurposeSuccessor    = "refresh-successor"
	PurposeSigningKey   = "signing-key-seal"
	// PurposeAuthCode keys the hashes of authorization codes.
	PurposeAuthCode = "authorization-code"
	// PurposeBrowserSession seals the authorization server's login cookie.
	PurposeBrowserSession = "browser-session-seal"
	// PurposeAuthRequest seals an authorization request carried through the
	// login and consent forms.
	PurposeAuthRequest = "authorization-request-seal"
	// PurposeCSRF keys the anti-CSRF tokens of the server's HTML forms.
	PurposeCSRF = "csrf-token"
	// PurposeRevocation keys the records that mark a JWT access token (by
	// jti) or a session (by family) as revoked before its tokens expire.
	PurposeRevocation = "revocation-marker"
	PurposeCAKey      = "ca-key-seal"
	// PurposeJoinToken keys the hashes of the issuance endpoint's one-time
	// join tokens.
	PurposeJoinToken = "join-token"
)

// ErrOpen reports sealed data that is corrupt or sealed under another key.
var ErrOpen = errors.New("keyring: cannot open sealed data (wrong master key or corrupt)")

// Keyring derives purpose keys from one master key. It is safe for
// concurrent use.
type Keyring struct {
	master [KeySize]byte
}

// New returns a keyring over master, which must be KeySize bytes.
func New(master []byte) (*Keyring, error) {
	if len(master) != KeySize {
		return nil, fmt.Errorf("keyring: master key is %d bytes, want %d", len(master), KeySize)
	}
	k := &Keyring{}
	copy(k.master[:], master)
	return k, nil
}

// Generate returns a keyring over a fresh random master key.
func Generate() *Keyring {
	k := &Keyring{}
	rand.Read(k.master[:])
	return k
}

// LoadFile reads a base64 master key from path. If the file does not exist
// and create is true, a new key is generated and written there with mode 0600.
func LoadFile(path string, create bool) (*Keyring, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && create {
		k := Generate()
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("keyring: %w", err)
		}
		enc := base64.StdEncoding.EncodeToString(k.master[:]) + "\n"
		if err := os.WriteFile(path, []byte(enc), 0o600); err != nil {
			return nil, fmt.Errorf("keyring: write master key: %w", err)
		}
		return k, nil
	}
	if err != nil {
		return nil, fmt.Errorf("keyring: read master key: %w", err)
	}
	return Parse(string(data))
}

// FromEnv reads the master key from EnvMasterKey; ok is false when unset.
func FromEnv() (k *Keyring, ok bool, err error) {
	v, ok := os.LookupEnv(EnvMasterKey)
	if !ok {
		return nil, false, nil
	}
	k, err = Parse(v)
	return k, true, err
}

// Parse decodes a base64 master key.
func Parse(s string) (*Keyring, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return New(b)
		}
	}
	return nil, errors.New("keyring: master key is not base64")
}

func (k *Keyring) derive(purpose string) []byte {
	key, err := hkdf.Key(sha256.New, k.master[:], nil, "gatehouse "+purpose, 32)
	if err != nil {
		panic("keyring: hkdf: " + err.Error()) // only on a length > 255*32
	}
	return key
}

// Hasher returns a keyed hash for purpose. Keep it: deriving is the costly part.
func (k *Keyring) Hasher(purpose string) *Hasher {
	return &Hasher{key: k.derive(purpose)}
}

// Hasher computes HMAC-SHA-256 under one derived key. Safe for concurrent use.
type Hasher struct {
	key []byte
}

// Hash returns the hex HMAC of value.
func (h *Hasher) Hash(value string) string {
	m := hmac.New(sha256.New, h.key)
	m.Write([]byte(value))
	return hex.EncodeToString(m.Sum(nil))
}

// Sum returns the raw HMAC of value.
func (h *Hasher) Sum(value string) []byte {
	m := hmac.New(sha256.New, h.key)
	m.Write([]byte(value))
	return m.Sum(nil)
}

// Verify reports, in constant time, whether hash is Hash(value).
func (h *Hasher) Verify(value, hash string) bool {
	want, err := hex.DecodeString(hash)
	if err != nil {
		return false
	}
	return hmac.Equal(h.Sum(value), want)
}

// Seal encrypts plaintext for purpose with AES-256-GCM; aad is authenticated
// but not encrypted (use the record's ID so a sealed value cannot be moved to
// another record).
func (k *Keyring) Seal(purpose string, plaintext, aad []byte) ([]byte, error) {
	aead, err := k.aead(purpose)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	rand.Read(nonce)
	return aead.Seal(nonce, nonce, plaintext, aad), nil
}

// Open decrypts what Seal returned.
func (k *Keyring) Open(purpose string, sealed, aad []byte) ([]byte, error) {
	aead, err := k.aead(purpose)
	if err != nil {
		return nil, err
	}
	if len(sealed) < aead.NonceSize() {
		return nil, ErrOpen
	}
	out, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], aad)
	if err != nil {
		return nil, ErrOpen
	}
	return out, nil
}

func (k *Keyring) aead(purpose string) (cipher.AEAD, error) {
	block, err := aes.NewCipher(k.derive(purpose))
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	return cipher.NewGCM(block)
}

// RandomToken returns a URL-safe random string carrying n bytes of entropy.
func RandomToken(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
