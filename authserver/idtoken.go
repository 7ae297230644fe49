package authserver

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"hash"
	"slices"

	"github.com/gatehouse-dev/gatehouse/internal/jose"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Scopes with a meaning of their own (OpenID Connect Core §5.4). Any other
// scope is passed through to access tokens untouched.
const (
	scopeOpenID  = "openid"  // issue an ID token; allow /userinfo
	scopeProfile = "profile" // preferred_username in the ID token and /userinfo
	scopeRoles   = "roles"   // roles in the ID token and /userinfo
)

// userClaims are the claims about a user that the ID token and the userinfo
// response carry, each released only with the scope that names it.
type userClaims struct {
	Subject  string   `json:"sub"`
	Username string   `json:"preferred_username,omitempty"`
	Roles    []string `json:"roles,omitempty"`
}

func claimsFor(u store.User, scopes []string) userClaims {
	c := userClaims{Subject: u.ID}
	if slices.Contains(scopes, scopeProfile) {
		c.Username = u.Username
	}
	if slices.Contains(scopes, scopeRoles) {
		c.Roles = u.Roles
		if c.Roles == nil {
			c.Roles = []string{}
		}
	}
	return c
}

// idTokenClaims is an ID token (OpenID Connect Core §2).
type idTokenClaims struct {
	Issuer   string            `json:"iss"`
	Audience string            `json:"aud"` // the client_id
	Expiry   *jose.NumericDate `json:"exp"`
	IssuedAt *jose.NumericDate `json:"iat"`
	AuthTime *jose.NumericDate `json:"auth_time"`
	Nonce    string            `json:"nonce,omitempty"`
	// AccessTokenHash is at_hash (§3.1.3.6): half the hash of the access
	// token issued with it, binding the two.
	AccessTokenHash string `json:"at_hash,omitempty"`
	SessionID       string `json:"sid,omitempty"`
	userClaims
}

// addIDToken adds an ID token to resp when the openid scope was granted:
// the authorization code grant (with the request's nonce) and refreshes
// (OpenID Connect Core §12.2: same sub, auth_time and sid, no nonce).
func (s *Server) addIDToken(ctx context.Context, resp *oauth.TokenResponse, c store.Client, u store.User, scopes []string, l login) error {
	if !slices.Contains(scopes, scopeOpenID) {
		return nil
	}
	key := s.keys.signer()
	now := s.cfg.Now()
	claims := idTokenClaims{
		Issuer:          s.cfg.Issuer,
		Audience:        c.ID,
		Expiry:          jose.NewNumericDate(now.Add(s.cfg.AccessTokenTTL)),
		IssuedAt:        jose.NewNumericDate(now),
		AuthTime:        jose.NewNumericDate(l.authTime),
		Nonce:           l.nonce,
		AccessTokenHash: halfHash(key.Algorithm(), resp.AccessToken),
		SessionID:       l.family,
		userClaims:      claimsFor(u, scopes),
	}
	raw, err := jose.Sign(key, jose.TypeJWT, claims)
	if err != nil {
		return s.internal(ctx, "sign id token", err)
	}
	resp.IDToken = raw
	return nil
}

// halfHash is the left half of the hash of value, base64url-encoded, with
// the hash of the signing algorithm (OpenID Connect Core §3.1.3.6). EdDSA
// uses SHA-512, as OpenID Connect implementations agree.
func halfHash(alg, value string) string {
	var h hash.Hash
	switch alg {
	case jose.ES384:
		h = sha512.New384()
	case jose.EdDSA:
		h = sha512.New()
	default: // ES256, RS256, PS256
		h = sha256.New()
	}
	h.Write([]byte(value))
	sum := h.Sum(nil)
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
}
