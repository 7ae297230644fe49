package gateway

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
)

// Cross-site request forgery defences.
//
// Requests authenticated by the session cookies with an unsafe method must
// be same-origin: the browser says so in Sec-Fetch-Site, or sends an Origin
// equal to the gateway's. Every browser in use sends one or the other on
// such requests; a client that sends neither is refused, and should use a
// bearer token. Requests with Basic or Bearer credentials carry them
// explicitly and are not subject to the check.
//
// The login and logout forms also carry a token bound to a pre-session
// cookie (the signed double-submit pattern): the form's token is an HMAC of
// the cookie's random value, so a page on another site can neither read nor
// forge it. A POST to either passes with a valid token or from the same
// origin; single-page apps that post JSON use the latter.

// sameOrigin reports whether the browser says that r comes from the
// gateway's own origin.
func (s *sessions) sameOrigin(r *http.Request) bool {
	if r.Header.Get("Sec-Fetch-Site") == "same-origin" {
		return true
	}
	origin := r.Header.Get("Origin")
	if origin == "" || origin == "null" {
		return false
	}
	got, err := parseOrigin(origin)
	return err == nil && got == s.ownOrigin(r)
}

// ownOrigin is PublicURL's origin, or else the one r was sent to.
func (s *sessions) ownOrigin(r *http.Request) string {
	if s.origin != "" {
		return s.origin
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	o, err := parseOrigin(scheme + "://" + r.Host)
	if err != nil {
		return "" // matches no parsed origin
	}
	return o
}

// parseOrigin returns the serialized origin of an http or https URL
// (RFC 6454 §6.2): lowercase scheme and host, and the port unless it is the
// scheme's default. A URL with user info, path, query or fragment is not an
// origin.
func parseOrigin(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", err
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" || u.Host == "" || u.User != nil ||
		u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", errors.New("not an http(s) origin")
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if scheme == "http" && port == "80" || scheme == "https" && port == "443" {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host, nil
}

// csrfKey keys the HMAC of form tokens. It is derived from the gateway's
// client secret, which every replica shares, so that a form served by one
// replica may be posted to another.
type csrfKey [sha256.Size]byte

func newCSRFKey(clientSecret string) csrfKey {
	m := hmac.New(sha256.New, []byte(clientSecret))
	m.Write([]byte("gatehouse gateway csrf v1"))
	var k csrfKey
	m.Sum(k[:0])
	return k
}

// token returns the form token bound to a pre-session cookie value.
func (k *csrfKey) token(cookie string) string {
	m := hmac.New(sha256.New, k[:])
	m.Write([]byte(cookie))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// valid reports whether token is the one bound to cookie.
func (k *csrfKey) valid(cookie, token string) bool {
	if cookie == "" || token == "" {
		return false
	}
	return hmac.Equal([]byte(k.token(cookie)), []byte(token))
}

// csrfCookie returns the request's pre-session cookie value, or a new one
// with the cookie that sets it (nil when the request had one).
func (s *sessions) csrfCookie(r *http.Request, n cookieNames) (string, *http.Cookie) {
	if v, ok := readCookie(r.Header, n.csrf); ok && len(v) >= 32 {
		return v, nil
	}
	v := rand.Text() + rand.Text()
	c := &http.Cookie{Name: n.csrf, Value: v, Path: "/", MaxAge: 3600,
		HttpOnly: true, Secure: n.secure, SameSite: http.SameSiteStrictMode}
	return v, c
}

// formAllowed reports whether a POST to the login or logout endpoint may
// proceed: a same-origin request, or a form token bound to the request's
// pre-session cookie.
func (s *sessions) formAllowed(r *http.Request, n cookieNames, token string) bool {
	if s.sameOrigin(r) {
		return true
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site == "cross-site" || site == "same-site" {
		return false
	}
	cookie, _ := readCookie(r.Header, n.csrf)
	return s.csrf.valid(cookie, token)
}
