package jose

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
)

// Confirmation is the "cnf" claim (RFC 7800 §3.1). Gatehouse uses one
// confirmation method: the SHA-256 thumbprint of the client certificate a
// token is bound to (RFC 8705 §3.1).
type Confirmation struct {
	// X5tS256 is base64url(SHA-256(DER certificate)), without padding.
	X5tS256 string `json:"x5t#S256,omitempty"`
}

// CertificateThumbprint returns the x5t#S256 value of a DER certificate
// (RFC 8705 §3.1): the unpadded base64url encoding of its SHA-256 hash.
func CertificateThumbprint(der []byte) string {
	sum := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// BindCertificate returns the confirmation that binds a token to the DER
// certificate.
func BindCertificate(der []byte) *Confirmation {
	return &Confirmation{X5tS256: CertificateThumbprint(der)}
}

// MatchesThumbprint reports, in constant time, whether thumbprint (an
// x5t#S256 value) is that of the DER certificate.
func MatchesThumbprint(thumbprint string, der []byte) bool {
	return thumbprint != "" && subtle.ConstantTimeCompare([]byte(thumbprint), []byte(CertificateThumbprint(der))) == 1
}
