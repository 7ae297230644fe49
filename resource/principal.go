package resource

import (
	"context"
	"slices"
	"time"
)

// Principal is the verified caller of a request: who the token says the user
// (or, for client_credentials, the client) is, and what it may do. A
// Principal may be shared between requests by the verified-token cache:
// treat it as read-only.
type Principal struct {
	Issuer    string
	Subject   string   // the sub claim: a stable user ID, or the client's ID
	Username  string   // for display; never use it for authorization decisions
	ClientID  string   // the OAuth client the token was issued to
	Roles     []string // from the configured roles claim
	Scopes    []string // from the scope claim
	Audience  []string
	SessionID string // the sid claim
	// Actor is the client acting for the subject after a token exchange
	// (the "act" claim's sub, RFC 8693 §4.1); empty otherwise.
	Actor   string
	TokenID string // the jti claim
	// KeyID is the kid header of a JWT: the issuer's key that signed it,
	// so Revocations can refuse every token of a revoked key. Empty for
	// introspected tokens.
	KeyID  string
	Expiry time.Time
	// IssuedAt is the iat claim; zero if the token has none.
	IssuedAt time.Time
	// CertificateThumbprint is the x5t#S256 member of the cnf claim: the
	// token is bound to the client certificate with this SHA-256
	// thumbprint (RFC 8705 §3.1) and is accepted only over a connection
	// that presented it. Empty for a bearer token any holder may use.
	CertificateThumbprint string
	// Token is the raw access token, for relaying it to another service.
	Token string
}

// HasRole reports whether the principal has role.
func (p *Principal) HasRole(role string) bool { return slices.Contains(p.Roles, role) }

// HasScope reports whether the principal's token carries scope.
func (p *Principal) HasScope(scope string) bool { return slices.Contains(p.Scopes, scope) }

type principalKey struct{}

// NewContext returns a copy of ctx carrying p.
func NewContext(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal Middleware stored in ctx, or nil.
func FromContext(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}
