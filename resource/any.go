package resource

import (
	"cmp"
	"context"
	"errors"
	"fmt"
)

// AnyVerifier accepts a token that any of its verifiers accepts, asking
// them in order and returning the first success. A service that accepts the
// tokens of two issuers chains their verifiers — typically the
// authorization server's and the gateway's phantom tokens:
//
//	resource.AnyVerifier{fromAuthServer, fromGateway}
//
// Put first the verifier most tokens are for: a token meant for a later one
// costs each earlier one a parse and the cheap claim checks (a wrong "iss"
// fails before any signature check or key fetch).
//
// When every verifier refuses, Verify returns an error wrapping
// ErrInvalidToken, unless one of them could not check the token (its keys
// were unavailable): then that error, so the caller answers "retry later"
// rather than "invalid". An empty AnyVerifier refuses every token.
type AnyVerifier []TokenVerifier

// Verify implements TokenVerifier.
func (a AnyVerifier) Verify(ctx context.Context, raw string) (*Principal, error) {
	var invalid, unchecked error
	for _, v := range a {
		p, err := v.Verify(ctx, raw)
		switch {
		case err == nil:
			return p, nil
		case !errors.Is(err, ErrInvalidToken):
			unchecked = cmp.Or(unchecked, err)
		default:
			invalid = cmp.Or(invalid, err)
		}
	}
	if unchecked != nil {
		return nil, unchecked
	}
	if invalid == nil {
		return nil, fmt.Errorf("%w: no verifier", ErrInvalidToken)
	}
	return nil, invalid
}

var _ TokenVerifier = AnyVerifier(nil)
