package resource

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/oauth"
)

// TokenVerifier turns a raw access token into a principal. *Verifier
// implements it.
type TokenVerifier interface {
	Verify(ctx context.Context, raw string) (*Principal, error)
}

// Realm is the realm named in the WWW-Authenticate challenges this package
// sends.
const Realm = "gatehouse"

// Middleware returns a middleware that requires a valid bearer access token
// on every request and puts its principal in the request context. Missing
// or invalid tokens are answered 401 per RFC 6750 §3 and never reach next.
// A certificate-bound token (RFC 8705 §3) is valid only over a TLS
// connection that presented its certificate: the verifier is given the
// connection's client certificate (WithPeerCertificate).
func Middleware(v TokenVerifier) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			raw, ok := BearerToken(r)
			if !ok {
				WriteError(w, errNoToken)
				return
			}
			p, err := v.Verify(WithPeerCertificate(r.Context(), RequestCertificate(r)), raw)
			if err != nil {
				WriteError(w, err)
				return
			}
			next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), p)))
		})
	}
}

// BearerToken returns the token of an "Authorization: Bearer" header
// (RFC 6750 §2.1; the scheme is case-insensitive).
func BearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimLeft(token, " ")
	return token, token != ""
}

// Errors an Authorizer returns; WriteError maps them to responses.
var (
	// ErrUnauthenticated: there is no principal (answered 401).
	ErrUnauthenticated = errors.New("resource: not authenticated")
	// ErrForbidden: the principal may not do this (answered 403).
	ErrForbidden = errors.New("resource: forbidden")
)

var errNoToken = errors.New("resource: no bearer token")

// ScopeError reports missing scopes; it wraps ErrForbidden and is answered
// 403 with error="insufficient_scope" (RFC 6750 §3.1).
type ScopeError struct {
	Missing []string
}

func (e *ScopeError) Error() string {
	return "resource: insufficient scope, missing " + strings.Join(e.Missing, " ")
}

// Unwrap makes errors.Is(err, ErrForbidden) true.
func (e *ScopeError) Unwrap() error { return ErrForbidden }

// WriteError answers a request that failed authentication or authorization,
// with the status, WWW-Authenticate header and JSON body RFC 6750 gives err.
func WriteError(w http.ResponseWriter, err error) {
	var e *oauth.Error
	switch scopeErr, isScope := errors.AsType[*ScopeError](err); {
	case errors.Is(err, errNoToken), errors.Is(err, ErrUnauthenticated):
		// RFC 6750 §3.1: the challenge carries no error code when the
		// request had no credentials; the body still names one.
		e = &oauth.Error{Code: oauth.ErrInvalidRequest, Description: "bearer token required",
			Status: http.StatusUnauthorized, Challenge: oauth.BearerChallenge(Realm, "", "")}
	case errors.Is(err, ErrCertificateMismatch):
		const desc = "the access token is bound to a client certificate this connection did not present"
		e = &oauth.Error{Code: oauth.ErrInvalidToken, Description: desc,
			Challenge: oauth.BearerChallenge(Realm, oauth.ErrInvalidToken, desc)}
	case errors.Is(err, ErrInvalidToken):
		e = &oauth.Error{Code: oauth.ErrInvalidToken, Description: "the access token is invalid or expired",
			Challenge: oauth.BearerChallenge(Realm, oauth.ErrInvalidToken, "the access token is invalid or expired")}
	case isScope:
		desc := "missing scope: " + strings.Join(scopeErr.Missing, " ")
		e = &oauth.Error{Code: oauth.ErrInsufficientScope, Description: desc,
			Challenge: oauth.BearerChallenge(Realm, oauth.ErrInsufficientScope, desc) + `, scope="` + strings.Join(scopeErr.Missing, " ") + `"`}
	case errors.Is(err, ErrForbidden):
		e = &oauth.Error{Code: oauth.ErrAccessDenied, Description: "access denied"}
	case errors.Is(err, ErrKeysUnavailable), errors.Is(err, ErrRevocationsUnavailable):
		e = &oauth.Error{Code: oauth.ErrTemporarilyUnavailable, Description: "cannot verify tokens now"}
	default:
		e = &oauth.Error{Code: oauth.ErrServerError, Description: "internal error"}
	}
	oauth.WriteError(w, e)
}
