package oauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Grant types (RFC 6749 §4, RFC 8693).
const (
	GrantPassword          = "password"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"
	GrantAuthorizationCode = "authorization_code"
	GrantTokenExchange     = "urn:ietf:params:oauth:grant-type:token-exchange"
)

// Error codes of RFC 6749 §5.2 and §4.1.2.1, RFC 6750 §3.1, RFC 7009 §2.2.1
// and RFC 8707 §2 (also used by RFC 8693 §2.2.2).
const (
	ErrInvalidRequest          = "invalid_request"
	ErrInvalidClient           = "invalid_client"
	ErrInvalidGrant            = "invalid_grant"
	ErrUnauthorizedClient      = "unauthorized_client"
	ErrUnsupportedGrantType    = "unsupported_grant_type"
	ErrInvalidScope            = "invalid_scope"
	ErrAccessDenied            = "access_denied"
	ErrServerError             = "server_error"
	ErrTemporarilyUnavailable  = "temporarily_unavailable"
	ErrInvalidToken            = "invalid_token"
	ErrInsufficientScope       = "insufficient_scope"
	ErrUnsupportedTokenType    = "unsupported_token_type"
	ErrUnsupportedResponseType = "unsupported_response_type"
	ErrInvalidTarget           = "invalid_target"
)

// Error codes of the authorization endpoint defined by OpenID Connect Core
// §3.1.2.6.
const (
	ErrLoginRequired          = "login_required"
	ErrConsentRequired        = "consent_required"
	ErrRequestNotSupported    = "request_not_supported"
	ErrRequestURINotSupported = "request_uri_not_supported"
)

// Error is an OAuth 2.0 protocol error: what a server sends and what a
// client receives.
type Error struct {
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
	URI         string `json:"error_uri,omitempty"`
	// Status is the HTTP status; if zero, the code's usual status.
	Status int `json:"-"`
	// Challenge, when set, is sent as the WWW-Authenticate header
	// (for example `Basic realm="gatehouse"` after failed client
	// authentication, RFC 6749 §5.2).
	Challenge string `json:"-"`
}

// Errorf returns an *Error with the given code and description.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Description: fmt.Sprintf(format, args...)}
}

func (e *Error) Error() string {
	if e.Description == "" {
		return e.Code
	}
	return e.Code + ": " + e.Description
}

// HTTPStatus returns Status, or the status RFC 6749 and RFC 6750 give the code.
func (e *Error) HTTPStatus() int {
	if e.Status != 0 {
		return e.Status
	}
	switch e.Code {
	case ErrInvalidClient, ErrInvalidToken:
		return http.StatusUnauthorized
	case ErrInsufficientScope, ErrAccessDenied:
		return http.StatusForbidden
	case ErrServerError:
		return http.StatusInternalServerError
	case ErrTemporarilyUnavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusBadRequest
	}
}

// WriteError renders err as a JSON error response with Cache-Control:
// no-store. An error that is not an *Error is rendered as server_error with
// no detail, so internal messages never reach the client.
func WriteError(w http.ResponseWriter, err error) {
	e, ok := errors.AsType[*Error](err)
	if !ok {
		e = &Error{Code: ErrServerError, Description: "internal error"}
	}
	if e.Challenge != "" {
		w.Header().Set("WWW-Authenticate", e.Challenge)
	}
	WriteJSON(w, e.HTTPStatus(), e)
}

// WriteJSON writes v as a JSON response that caches must not store.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// BearerChallenge returns a WWW-Authenticate value for RFC 6750 §3: the
// realm, and the error and its description when code is not empty.
func BearerChallenge(realm, code, description string) string {
	var b strings.Builder
	b.WriteString(`Bearer realm=`)
	b.WriteString(quote(realm))
	if code != "" {
		b.WriteString(`, error=`)
		b.WriteString(quote(code))
		if description != "" {
			b.WriteString(`, error_description=`)
			b.WriteString(quote(description))
		}
	}
	return b.String()
}

// quote makes s a quoted-string, dropping characters RFC 6750 §3 forbids.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			continue
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return b.String()
}
