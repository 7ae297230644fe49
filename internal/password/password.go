// Package password hashes and verifies user passwords with argon2id
// (RFC 9106) from golang.org/x/crypto, in the PHC string format
// "$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>".
//
// The default parameters are OWASP's current minimum for argon2id (19 MiB of
// memory, 2 passes, 1 lane). Verify reports when a stored hash was made with
// other parameters, so the caller can rehash on a successful login.
package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id cost parameters.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8  // lanes
	KeyLen  uint32 // bytes of output
	SaltLen uint32 // bytes of salt
}

// Default is OWASP's recommended minimum for argon2id.
var Default = Params{Memory: 19 * 1024, Time: 2, Threads: 1, KeyLen: 32, SaltLen: 16}

// ErrMalformed reports a stored hash that is not a valid argon2id PHC string.
var ErrMalformed = errors.New("password: malformed hash")

// MaxLength bounds the passwords Hash and Verify accept, so a huge input
// cannot be used to burn CPU.
const MaxLength = 1024

// Hash returns the PHC string of pw under p.
func Hash(pw string, p Params) (string, error) {
	if len(pw) > MaxLength {
		return "", fmt.Errorf("password: longer than %d bytes", MaxLength)
	}
	salt := make([]byte, p.SaltLen)
	rand.Read(salt)
	key := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version,
		p.Memory, p.Time, p.Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// Verify reports whether pw matches hash, in time independent of where they
// differ. rehash is true when the match was made with parameters other than
// want, so the caller should store Hash(pw, want).
func Verify(pw, hash string, want Params) (ok, rehash bool, err error) {
	p, salt, key, err := parse(hash)
	if err != nil {
		return false, false, err
	}
	if len(pw) > MaxLength {
		return false, false, nil
	}
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, uint32(len(key)))
	if subtle.ConstantTimeCompare(got, key) != 1 {
		return false, false, nil
	}
	rehash = p.Memory != want.Memory || p.Time != want.Time || p.Threads != want.Threads ||
		uint32(len(key)) != want.KeyLen || uint32(len(salt)) != want.SaltLen
	return true, rehash, nil
}

func parse(hash string) (p Params, salt, key []byte, err error) {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, nil, nil, ErrMalformed
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return p, nil, nil, ErrMalformed
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return p, nil, nil, ErrMalformed
	}
	if p.Memory < 8*uint32(p.Threads) || p.Memory > 4<<20 || p.Time < 1 || p.Time > 100 || p.Threads < 1 {
		return p, nil, nil, ErrMalformed
	}
	if salt, err = base64.RawStdEncoding.DecodeString(parts[4]); err != nil || len(salt) < 8 {
		return p, nil, nil, ErrMalformed
	}
	if key, err = base64.RawStdEncoding.DecodeString(parts[5]); err != nil || len(key) < 16 || len(key) > 128 {
		return p, nil, nil, ErrMalformed
	}
	p.SaltLen, p.KeyLen = uint32(len(salt)), uint32(len(key))
	return p, salt, key, nil
}
