// Package jose is Gatehouse's only door to JOSE (RFC 7515, 7517, 7519): it
// signs JWTs with our keys and verifies JWTs from any issuer. Parsing and
// signature work is done by github.com/go-jose/go-jose/v4; this package adds
// the checks a caller must never forget, and makes them impossible to skip:
//
//   - the algorithm must be on an allow-list of asymmetric algorithms ("none"
//     and HMAC algorithms can never be allowed, so a public key can never be
//     used as an HMAC secret);
//   - the "typ" header must be one of the expected types (RFC 8725 §3.11,
//     RFC 9068 §4: "at+jwt" for access tokens);
//   - "iss" must equal the expected issuer and "aud" must contain an expected
//     audience;
//   - "exp" is required, and "exp", "nbf" and "iat" are checked against the
//     clock with a small leeway.
//
// The cheap checks run before the signature, as in coreos/go-oidc.
package jose
