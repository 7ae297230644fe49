package pki

import (
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
)

// Authorizer decides whether the peer of a TLS connection, whose certificate
// already verified against the trust bundle, may go on. id is the peer's
// SPIFFE ID; verifiedChains run from its certificate to a root of the bundle.
// A nil error admits the peer.
//
// Authorizer has the signature of go-spiffe's tlsconfig.Authorizer, so each
// converts to the other: tlsconfig.Authorizer(pki.AuthorizeID(id)) and
// pki.Authorizer(tlsconfig.AuthorizeIDPrefix(prefix)).
type Authorizer func(id spiffeid.ID, verifiedChains [][]*x509.Certificate) error

// ErrUnauthorized is wrapped by every error the Authorize functions return.
var ErrUnauthorized = errors.New("pki: peer not authorized")

// UnauthorizedError reports a peer that an Authorizer refused: who it was,
// and what the authorizer accepts.
type UnauthorizedError struct {
	// ID is the peer's SPIFFE ID.
	ID spiffeid.ID
	// Want describes what would have been admitted, such as
	// "spiffe://example.org/svc/gateway" or "a member of example.org", or
	// the refusing authorizer's own error when it is not one of ours.
	Want string
}

func (e *UnauthorizedError) Error() string {
	return fmt.Sprintf("pki: peer %s not authorized: want %s", e.ID, e.Want)
}

// Unwrap returns ErrUnauthorized.
func (e *UnauthorizedError) Unwrap() error { return ErrUnauthorized }

// AuthorizeID admits exactly the SPIFFE ID allowed.
func AuthorizeID(allowed spiffeid.ID) Authorizer {
	return match(spiffeid.MatchID(allowed), allowed.String())
}

// AuthorizeOneOf admits any of the SPIFFE IDs allowed, and nothing if there
// are none.
func AuthorizeOneOf(allowed ...spiffeid.ID) Authorizer {
	names := make([]string, len(allowed))
	for i, id := range allowed {
		names[i] = id.String()
	}
	return match(spiffeid.MatchOneOf(allowed...), "one of ["+strings.Join(names, " ")+"]")
}

// AuthorizeMemberOf admits every SPIFFE ID in the trust domain td.
func AuthorizeMemberOf(td spiffeid.TrustDomain) Authorizer {
	return match(spiffeid.MatchMemberOf(td), "a member of "+td.String())
}

// match turns go-spiffe's matcher into an Authorizer whose refusals say
// what was wanted.
func match(m spiffeid.Matcher, want string) Authorizer {
	return func(id spiffeid.ID, _ [][]*x509.Certificate) error {
		if m(id) != nil {
			return &UnauthorizedError{ID: id, Want: want}
		}
		return nil
	}
}

// explained wraps a, so that every refusal is an *UnauthorizedError naming
// the peer, even from an authorizer that is not one of ours.
func (a Authorizer) explained() tlsconfig.Authorizer {
	return func(id spiffeid.ID, chains [][]*x509.Certificate) error {
		err := a(id, chains)
		if err == nil {
			return nil
		}
		if _, ok := errors.AsType[*UnauthorizedError](err); ok {
			return err
		}
		return &UnauthorizedError{ID: id, Want: err.Error()}
	}
}

// Interface guard: an Authorizer converts to go-spiffe's.
var _ = tlsconfig.Authorizer(Authorizer(nil))
