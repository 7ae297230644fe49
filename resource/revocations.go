package resource

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/jose"
)

// ErrRevoked is wrapped by the error Verify returns for a token whose
// signature and claims are good but that Config.Revocations says was
// revoked. It wraps ErrInvalidToken: the token must be refused, and
// Middleware answers 401 invalid_token.
var ErrRevoked = fmt.Errorf("%w: token revoked", ErrInvalidToken)

// ErrRevocationsUnavailable is returned by a Revocations set to fail closed
// when it has not heard from its event stream for too long: the token could
// not be checked, and Middleware answers 503.
var ErrRevocationsUnavailable = errors.New("resource: revocation state unavailable")

// Revocations is consulted on every verification, after the signature and
// claims are checked or the token was found in the verified-token cache, so
// that a token revoked after it was cached is refused too. Package ssf's
// Receiver implements it from an OpenID Shared Signals stream.
//
// A revoked signing key (Principal.KeyID) is refused here at once. It also
// leaves the issuer's JWKS at once, but a Verifier's cached key set keeps
// it until its next refresh (RemoteKeySet: within 5m); after that, tokens
// it signed fail verification with an unknown key even without
// Revocations, except those already in the verified-token cache, which
// only Revocations refuses.
type Revocations interface {
	// Check returns nil if the token p was verified from may be used, an
	// error wrapping ErrRevoked if it was revoked, or another error (such
	// as ErrRevocationsUnavailable) if it cannot be told. It must be fast
	// and safe for concurrent use: it runs on every request.
	Check(p *Principal) error
}

// WithRevocations returns a TokenVerifier that verifies with v and then
// refuses the tokens r says were revoked. It suits any TokenVerifier,
// whatever caches it keeps (an Introspector, Either); for a *Verifier,
// Config.Revocations does the same.
func WithRevocations(v TokenVerifier, r Revocations) TokenVerifier {
	return revocationChecking{v, r}
}

type revocationChecking struct {
	v TokenVerifier
	r Revocations
}

func (c revocationChecking) Verify(ctx context.Context, raw string) (*Principal, error) {
	p, err := c.v.Verify(ctx, raw)
	if err != nil {
		return nil, err
	}
	if err := c.r.Check(p); err != nil {
		return nil, err
	}
	return p, nil
}

// RemoteKeySet returns the issuer's signing keys as a Verifier fetches them:
// from jwksURL, or from the jwks_uri of the issuer's discovery document if
// jwksURL is empty; cached, refreshed every 5m, refetched (at most every
// 10s) on an unknown key ID, and served from cache while the issuer is
// down. For verifying other tokens the issuer signs, such as Security Event
// Tokens (package ssf). If client is nil, one with a 10s timeout.
func RemoteKeySet(issuer, jwksURL string, client *http.Client) jose.Keys {
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	return &remoteKeys{issuer: issuer, jwksURL: jwksURL, client: client, now: time.Now,
		minRefetch: 10 * time.Second, maxAge: 5 * time.Minute}
}
