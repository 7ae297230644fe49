package authserver

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/keyring"
)

// The login, consent, logout and error pages are server-rendered HTML that work
// without JavaScript and load nothing from elsewhere: one inline style
// sheet, allowed by its hash in the Content-Security-Policy.

const pageCSS = `body{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem;color:#1b1b1b;background:#fff;line-height:1.5}` +
	`label{display:block;margin-top:1rem;font-weight:600}` +
	`input{display:block;width:100%;box-sizing:border-box;padding:.5rem;font-size:1rem;border:1px solid #555;border-radius:4px}` +
	`button{margin:1.25rem .5rem 0 0;padding:.5rem 1.25rem;font-size:1rem;border-radius:4px;border:1px solid #1b1b1b}` +
	`button.primary{background:#1b4dd1;border-color:#1b4dd1;color:#fff}` +
	`.error{color:#9b0000;border:1px solid #9b0000;border-radius:4px;padding:.5rem}` +
	`:focus-visible{outline:3px solid #f0a000;outline-offset:2px}`

var styleHash = func() string {
	sum := sha256.Sum256([]byte(pageCSS))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}()

const layoutHTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{{.Title}}</title>
<style>` + pageCSS + `</style>
</head>
<body>
<main>
<h1>{{.Title}}</h1>
{{template "content" .}}
</main>
</body>
</html>
`

const loginHTML = `{{define "content"}}
{{- if .Error}}<p class="error" role="alert">{{.Error}}</p>{{end}}
<p>Sign in to continue to <strong>{{.ClientID}}</strong>.</p>
<form method="post" action="{{.Action}}">
<input type="hidden" name="csrf_token" value="{{.CSRF}}">
<input type="hidden" name="request" value="{{.Request}}">
<label for="username">Username</label>
<input id="username" name="username" type="text" autocomplete="username" autocapitalize="none" spellcheck="false" required autofocus value="{{.Username}}">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button class="primary" type="submit" name="action" value="login">Sign in</button>
<button type="submit" name="action" value="cancel" formnovalidate>Cancel</button>
</form>
{{end}}`

const consentHTML = `{{define "content"}}
<p>Signed in as <strong>{{.Username}}</strong>.</p>
<p><strong>{{.ClientID}}</strong> asks to:</p>
<ul>
{{- range .Scopes}}
<li>{{.}}</li>
{{- end}}
</ul>
<form method="post" action="{{.Action}}">
<input type="hidden" name="csrf_token" value="{{.CSRF}}">
<input type="hidden" name="request" value="{{.Request}}">
<button class="primary" type="submit" name="action" value="allow">Allow</button>
<button type="submit" name="action" value="deny">Deny</button>
</form>
{{end}}`

const logoutHTML = `{{define "content"}}
<p>You are signed in as <strong>{{.Username}}</strong>.</p>
<p>{{if .ClientID}}<strong>{{.ClientID}}</strong> asks to sign you out.{{else}}An application asks to sign you out.{{end}}
Do you want to sign out?</p>
<form method="post" action="{{.Action}}">
<input type="hidden" name="csrf_token" value="{{.CSRF}}">
<input type="hidden" name="request" value="{{.Request}}">
<button class="primary" type="submit" name="action" value="logout">Sign out</button>
<button type="submit" name="action" value="stay">Stay signed in</button>
</form>
{{end}}`

// messageHTML is a page that only tells the user something.
const messageHTML = `{{define "content"}}
<p role="status">{{.Message}}</p>
{{end}}`

const errorHTML = `{{define "content"}}
<p role="alert">{{.Message}}</p>
<p>Return to the application you came from and try again.</p>
{{end}}`

var (
	layout      = template.Must(template.New("page").Parse(layoutHTML))
	loginPage   = template.Must(template.Must(layout.Clone()).Parse(loginHTML))
	consentPage = template.Must(template.Must(layout.Clone()).Parse(consentHTML))
	errorPage   = template.Must(template.Must(layout.Clone()).Parse(errorHTML))
	logoutPage  = template.Must(template.Must(layout.Clone()).Parse(logoutHTML))
	messagePage = template.Must(template.Must(layout.Clone()).Parse(messageHTML))
)

type loginData struct {
	Title, Error, ClientID, Action, CSRF, Request, Username string
}

type consentData struct {
	Title, Username, ClientID, Action, CSRF, Request string
	Scopes                                           []string
}

type logoutData struct {
	Title, Username, ClientID, Action, CSRF, Request string
}

type errorData struct {
	Title, Message string
}

// scopeText describes a scope on the consent page.
func scopeText(scope string) string {
	switch scope {
	case scopeOpenID:
		return "Confirm who you are"
	case scopeProfile:
		return "See your username"
	case scopeRoles:
		return "See your roles"
	default:
		return "Use the permission “" + scope + "”"
	}
}

// renderPage writes an HTML page with the headers every page of ours gets.
// formTarget is the client's redirect URI when the page has a form whose
// answer redirects there, so that form-action allows it; empty otherwise.
func renderPage(w http.ResponseWriter, status int, t *template.Template, data any, formTarget string) {
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError) // only on a programming error
		return
	}
	formAction := "'none'"
	if formTarget != "" {
		formAction = "'self'"
		if src := cspSource(formTarget); src != "" {
			formAction += " " + src
		}
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src "+styleHash+
		"; form-action "+formAction+"; frame-ancestors 'none'; base-uri 'none'")
	setPageHeaders(h)
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// setPageHeaders sets the headers shared by pages and the redirects that
// leave them.
func setPageHeaders(h http.Header) {
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
}

// cspSource is the CSP source expression matching a redirect URI: its
// origin, or its scheme for a native app's private-use scheme. Browsers
// apply form-action to the redirect that follows a form submission. A URI
// with characters a source expression cannot hold gives "".
func cspSource(redirectURI string) string {
	u, err := url.Parse(redirectURI)
	if err != nil || u.Scheme == "" {
		return ""
	}
	src := u.Scheme + ":"
	if u.Scheme == "http" || u.Scheme == "https" {
		src = u.Scheme + "://" + u.Host
	}
	if strings.ContainsFunc(src, func(r rune) bool {
		return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune(":/.-+[]", r))
	}) {
		return ""
	}
	return src
}

// Cross-site request forgery protection: a random value in a cookie, and
// in each form an HMAC of it under a key of the keyring, bound to the form
// (and to the browser session for consent). A forged POST has neither the
// cookie's value nor the key, so it cannot carry a matching token.

const csrfCookie = "gatehouse-csrf"

// Forms that carry a CSRF token.
const (
	formLogin   = "login"
	formConsent = "consent"
)

// csrfToken returns the token for form, setting the cookie it is bound to
// if the request has none.
func (s *Server) csrfToken(w http.ResponseWriter, r *http.Request, form, sessionID string) string {
	value := s.cookieValue(r, csrfCookie)
	if len(value) < 43 {
		value = keyring.RandomToken(32)
		s.setCookie(w, csrfCookie, value)
	}
	return base64.RawURLEncoding.EncodeToString(s.csrfMAC(value, form, sessionID))
}

// checkCSRF reports whether token is the token of form for this browser.
func (s *Server) checkCSRF(r *http.Request, form, sessionID, token string) bool {
	value := s.cookieValue(r, csrfCookie)
	got, err := base64.RawURLEncoding.DecodeString(token)
	if len(value) < 43 || err != nil {
		return false
	}
	return hmac.Equal(got, s.csrfMAC(value, form, sessionID))
}

func (s *Server) csrfMAC(cookie, form, sessionID string) []byte {
	return s.csrfHasher.Sum(form + "\x00" + sessionID + "\x00" + cookie)
}

// Cookies are host-only, HttpOnly, SameSite=Lax and Secure, with the
// __Host- prefix, which a browser only accepts from a secure origin without
// a Domain attribute. An issuer that is http on a loopback address (for
// development) gets cookies without Secure and without the prefix, since
// neither would be kept over plain http.

func (s *Server) cookieName(base string) string {
	if s.secureCookies {
		return "__Host-" + base
	}
	return base
}

func (s *Server) cookieValue(r *http.Request, base string) string {
	c, err := r.Cookie(s.cookieName(base))
	if err != nil {
		return ""
	}
	return c.Value
}

func (s *Server) setCookie(w http.ResponseWriter, base, value string) {
	http.SetCookie(w, &http.Cookie{
		Name: s.cookieName(base), Value: value, Path: "/",
		HttpOnly: true, Secure: s.secureCookies, SameSite: http.SameSiteLaxMode,
	})
}

func (s *Server) clearCookie(w http.ResponseWriter, base string) {
	http.SetCookie(w, &http.Cookie{
		Name: s.cookieName(base), Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: s.secureCookies, SameSite: http.SameSiteLaxMode,
	})
}
