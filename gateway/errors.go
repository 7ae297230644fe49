package gateway

import (
	"errors"
	"net/http"

	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/resource"
)

var (
	// errBadCredentials: Basic credentials the authorization server refused.
	errBadCredentials = errors.New("gateway: bad credentials")
	// errMalformedCredentials: an Authorization header we cannot read.
	errMalformedCredentials = errors.New("gateway: malformed credentials")
	// errUnavailable: the authorization server could not be reached.
	errUnavailable = errors.New("gateway: authorization server unavailable")
)

// challenges are the WWW-Authenticate values sent with every 401: the
// gateway accepts Bearer tokens and Basic credentials.
func setChallenges(w http.ResponseWriter, code, desc string) {
	w.Header().Add("WWW-Authenticate", oauth.BearerChallenge(resource.Realm, code, desc))
	w.Header().Add("WWW-Authenticate", `Basic realm="`+resource.Realm+`", charset="UTF-8"`)
}

// unauthorized answers a request whose authentication failed.
func (g *Gateway) unauthorized(w http.ResponseWriter, r *http.Request, err error) {
	setOutcome(w, outcomeUnauthenticated)
	if g.sessions != nil && g.sessions.unauthorized(w, r, err) {
		return
	}
	switch {
	case errors.Is(err, errNoCredentials):
		setChallenges(w, "", "")
		writeError(w, &oauth.Error{Code: oauth.ErrInvalidRequest, Description: "credentials required", Status: http.StatusUnauthorized})
	case errors.Is(err, resource.ErrInvalidToken):
		setChallenges(w, oauth.ErrInvalidToken, "the access token is invalid or expired")
		writeError(w, &oauth.Error{Code: oauth.ErrInvalidToken, Description: "the access token is invalid or expired"})
	case errors.Is(err, errBadCredentials):
		setChallenges(w, "", "")
		writeError(w, &oauth.Error{Code: oauth.ErrInvalidGrant, Description: "invalid username or password", Status: http.StatusUnauthorized})
	case errors.Is(err, errMalformedCredentials):
		setChallenges(w, "", "")
		writeError(w, &oauth.Error{Code: oauth.ErrInvalidRequest, Description: "malformed or unsupported Authorization header", Status: http.StatusUnauthorized})
	case errors.Is(err, errUnavailable), errors.Is(err, resource.ErrKeysUnavailable):
		setOutcome(w, outcomeAuthUnavailable)
		g.cfg.Logger.WarnContext(r.Context(), "cannot authenticate", "err", err)
		writeError(w, &oauth.Error{Code: oauth.ErrTemporarilyUnavailable, Description: "authentication is unavailable, retry later"})
	default:
		setOutcome(w, outcomeError)
		g.cfg.Logger.ErrorContext(r.Context(), "authenticate", "err", err)
		writeError(w, &oauth.Error{Code: oauth.ErrServerError, Description: "internal error"})
	}
}

// deny answers 403; the reason goes to the log, not to the client.
func (g *Gateway) deny(w http.ResponseWriter, r *http.Request, reason string) {
	setOutcome(w, outcomeDenied)
	g.cfg.Logger.InfoContext(r.Context(), "request denied", "method", r.Method, "path", r.URL.Path, "reason", reason)
	writeError(w, &oauth.Error{Code: oauth.ErrAccessDenied, Description: "access denied", Status: http.StatusForbidden})
}

func writeError(w http.ResponseWriter, e *oauth.Error) { oauth.WriteError(w, e) }

// setOutcome records why the gateway answered a request itself, for the
// access log and the metrics.
func setOutcome(w http.ResponseWriter, outcome string) {
	if x, ok := w.(*exchange); ok {
		x.outcome = outcome
	}
}
