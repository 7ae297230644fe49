package authserver_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/accounts"
	"github.com/gatehouse-dev/gatehouse/internal/keyring"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// oauthConfig is the golang.org/x/oauth2 configuration of a client, with
// its endpoints found by discovery.
func (e *flowEnv) oauthConfig(clientID string, scopes ...string) *oauth2.Config {
	e.t.Helper()
	ctx := oidc.ClientContext(e.t.Context(), &http.Client{Transport: e.transport})
	provider, err := oidc.NewProvider(ctx, e.issuer)
	if err != nil {
		e.t.Fatalf("discovery: %v", err)
	}
	ep := provider.Endpoint()
	ep.AuthStyle = oauth2.AuthStyleInHeader
	if clientID == spaClient || clientID == postClient {
		ep.AuthStyle = oauth2.AuthStyleInParams
	}
	return &oauth2.Config{ClientID: clientID, ClientSecret: e.secrets[clientID], RedirectURL: e.callback,
		Scopes: scopes, Endpoint: ep}
}

// seen says which of the server's pages an authorization showed.
type seen struct{ login, consent bool }

// authorize walks a browser through an authorization request: it logs in
// as username when the login page appears, approves the consent page, and
// returns the code the client received.
func (e *flowEnv) authorize(b *browser, conf *oauth2.Config, username, pw string, opts ...oauth2.AuthCodeOption) (string, seen) {
	e.t.Helper()
	state := rand.Text()
	var s seen
	p := b.get(conf.AuthCodeURL(state, opts...))
	for range 3 {
		switch {
		case p.url.Path == "/callback":
			return callbackCode(e.t, e, p, state), s
		case p.status == http.StatusOK && p.forms != nil && p.forms[0].fields.Has("password"):
			s.login = true
			checkPage(e.t, p)
			p = b.submit(p, "login", map[string]string{"username": username, "password": pw})
		case p.status == http.StatusOK && strings.Contains(p.body, "Allow access?"):
			s.consent = true
			checkPage(e.t, p)
			p = b.submit(p, "allow", nil)
		default:
			e.t.Fatalf("unexpected page %s (%d):\n%s", p.url, p.status, p.body)
		}
	}
	e.t.Fatalf("authorization did not reach the client")
	return "", s
}

// callbackCode checks the client's redirect URI got a code, the state and
// the issuer (RFC 9207), and returns the code.
func callbackCode(t testing.TB, e *flowEnv, p page, state string) string {
	t.Helper()
	q := p.url.Query()
	if got := p.url.Scheme + "://" + p.url.Host + p.url.Path; got != e.callback {
		t.Fatalf("redirected to %q, want %q", got, e.callback)
	}
	if q.Get("error") != "" {
		t.Fatalf("got error %q (%s) at the redirect URI, want a code", q.Get("error"), q.Get("error_description"))
	}
	if q.Get("state") != state || q.Get("iss") != e.issuer {
		t.Fatalf("got state %q iss %q, want %q and %q", q.Get("state"), q.Get("iss"), state, e.issuer)
	}
	code := q.Get("code")
	if raw, err := base64.RawURLEncoding.DecodeString(code); err != nil || len(raw) < 32 {
		t.Fatalf("got code %q, want at least 256 random bits", code)
	}
	return code
}

var styleRE = regexp.MustCompile(`(?s)<style>(.*?)</style>`)

// checkPage checks what every HTML page of the server must have: the
// security headers, an inline style allowed by its hash and nothing else,
// and accessible markup.
func checkPage(t testing.TB, p page) {
	t.Helper()
	for h, want := range map[string]string{
		"X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store",
		"X-Content-Type-Options": "nosniff", "Content-Type": "text/html; charset=utf-8",
	} {
		if got := p.header.Get(h); got != want {
			t.Errorf("%s: got %q, want %q", h, got, want)
		}
	}
	csp := p.header.Get("Content-Security-Policy")
	m := styleRE.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("page has no inline style:\n%s", p.body)
	}
	sum := sha256.Sum256([]byte(m[1]))
	for _, want := range []string{"default-src 'none'", "frame-ancestors 'none'", "base-uri 'none'",
		"style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
		}
	}
	for _, bad := range []string{"<script", "http://", "https://", " style="} {
		if strings.Contains(p.body, bad) {
			t.Errorf("page contains %q; want no scripts, external assets or inline style attributes", bad)
		}
	}
	if !strings.Contains(p.body, `<html lang="en">`) {
		t.Errorf("page has no lang attribute")
	}
	for _, f := range p.forms {
		for name := range f.fields {
			if name != "csrf_token" && name != "request" && !strings.Contains(p.body, `<label for="`+name+`">`) {
				t.Errorf("input %q has no label", name)
			}
		}
	}
}

func TestAuthorizationCodeFlowOIDC(t *testing.T) {
	e := newFlowEnv(t)
	ctx := t.Context()
	provider, err := oidc.NewProvider(ctx, e.issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	idVerifier := provider.Verifier(&oidc.Config{ClientID: spaClient})
	conf := e.oauthConfig(spaClient, "openid", "profile", "roles")
	b := newBrowser(t, e.transport)

	verifier, nonce := oauth2.GenerateVerifier(), rand.Text()
	code, s := e.authorize(b, conf, "alice", alicePassword, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce))
	if !s.login || !s.consent {
		t.Fatalf("first authorization showed %+v, want the login and consent pages", s)
	}
	tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	if tok.RefreshToken == "" || tok.Extra("scope") != "openid profile roles" {
		t.Fatalf("got refresh token %q scope %v, want a refresh token and the granted scopes", tok.RefreshToken, tok.Extra("scope"))
	}

	// The ID token, verified by go-oidc against the discovered JWKS.
	rawID, _ := tok.Extra("id_token").(string)
	idt, err := idVerifier.Verify(ctx, rawID)
	if err != nil {
		t.Fatalf("verify id_token: %v", err)
	}
	if idt.Nonce != nonce || idt.Subject != e.alice.ID {
		t.Fatalf("got nonce %q sub %q, want %q and %q", idt.Nonce, idt.Subject, nonce, e.alice.ID)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Fatalf("at_hash: %v", err)
	}
	var claims struct {
		Username string   `json:"preferred_username"`
		Roles    []string `json:"roles"`
		SID      string   `json:"sid"`
		AuthTime int64    `json:"auth_time"`
	}
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if claims.Username != "alice" || !slices.Equal(claims.Roles, []string{"consumer", "admin"}) ||
		claims.SID == "" || time.Since(time.Unix(claims.AuthTime, 0)) > time.Minute {
		t.Fatalf("got claims %+v, want alice's username, roles, a sid and a recent auth_time", claims)
	}
	if typ := jwtHeader(t, rawID)["typ"]; typ != "JWT" {
		t.Fatalf("id_token typ: got %v, want JWT", typ)
	}

	// /userinfo accepts the access token and releases what its scopes allow.
	ui, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	var uiClaims struct {
		Username string   `json:"preferred_username"`
		Roles    []string `json:"roles"`
	}
	if err := ui.Claims(&uiClaims); err != nil {
		t.Fatal(err)
	}
	if ui.Subject != e.alice.ID || uiClaims.Username != "alice" || len(uiClaims.Roles) != 2 {
		t.Fatalf("userinfo: got sub %q %+v, want alice with her roles", ui.Subject, uiClaims)
	}

	// TokenSource refreshes the expired token (client_id only: "none").
	expired := *tok
	expired.Expiry = time.Now().Add(-time.Minute)
	tok2, err := conf.TokenSource(ctx, &expired).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if tok2.RefreshToken == tok.RefreshToken || tok2.AccessToken == tok.AccessToken {
		t.Fatalf("refresh returned the same tokens, want rotated ones")
	}
	idt2, err := idVerifier.Verify(ctx, tok2.Extra("id_token").(string))
	if err != nil {
		t.Fatalf("verify refreshed id_token: %v", err)
	}
	var claims2 struct {
		SID      string `json:"sid"`
		AuthTime int64  `json:"auth_time"`
	}
	idt2.Claims(&claims2)
	if idt2.Subject != e.alice.ID || claims2.SID != claims.SID || claims2.AuthTime != claims.AuthTime || idt2.Nonce != "" {
		t.Fatalf("refreshed id_token: got sub %q %+v nonce %q, want the same sub, sid and auth_time, no nonce",
			idt2.Subject, claims2, idt2.Nonce)
	}

	// A second authorization in the same browser skips both pages: one
	// request to the server, one redirect to the client.
	b.history()
	verifier2 := oauth2.GenerateVerifier()
	code2, s := e.authorize(b, conf, "", "", oauth2.S256ChallengeOption(verifier2), oidc.Nonce(nonce))
	if s.login || s.consent {
		t.Fatalf("second authorization showed %+v, want neither page", s)
	}
	if h := b.history(); len(h) != 2 {
		t.Fatalf("second authorization made requests %q, want the authorization request and the redirect", h)
	}
	tok3, err := conf.Exchange(ctx, code2, oauth2.VerifierOption(verifier2))
	if err != nil {
		t.Fatalf("exchange second code: %v", err)
	}
	idt3, err := idVerifier.Verify(ctx, tok3.Extra("id_token").(string))
	if err != nil {
		t.Fatal(err)
	}
	var claims3 struct {
		AuthTime int64 `json:"auth_time"`
	}
	idt3.Claims(&claims3)
	if claims3.AuthTime != claims.AuthTime {
		t.Fatalf("auth_time of the session's second code: got %d, want the login's %d", claims3.AuthTime, claims.AuthTime)
	}

	// A scope not yet granted asks for consent again, without a login.
	conf.Scopes = []string{"openid", "orders"}
	verifier3 := oauth2.GenerateVerifier()
	if _, s := e.authorize(b, conf, "", "", oauth2.S256ChallengeOption(verifier3)); s.login || !s.consent {
		t.Fatalf("authorization with a new scope showed %+v, want only the consent page", s)
	}
}

// jwtHeader decodes the protected header of a compact JWS.
func jwtHeader(t *testing.T, raw string) map[string]any {
	t.Helper()
	h, _, _ := strings.Cut(raw, ".")
	data, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		t.Fatalf("jwt header: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("jwt header: %v", err)
	}
	return m
}

func TestAuthorizationCodeConfidentialClients(t *testing.T) {
	e := newFlowEnv(t)
	b := newBrowser(t, e.transport)
	tests := []struct {
		name   string
		client string
		pkce   bool
	}{
		{"client_secret_basic with PKCE", webClient, true},
		{"client_secret_basic without PKCE", webClient, false},
		{"client_secret_post with PKCE", postClient, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conf := e.oauthConfig(tt.client, "openid", "profile")
			verifier := oauth2.GenerateVerifier()
			var authOpts, exchangeOpts []oauth2.AuthCodeOption
			if tt.pkce {
				authOpts = append(authOpts, oauth2.S256ChallengeOption(verifier))
				exchangeOpts = append(exchangeOpts, oauth2.VerifierOption(verifier))
			}
			code, _ := e.authorize(b, conf, "alice", alicePassword, authOpts...)
			tok, err := conf.Exchange(t.Context(), code, exchangeOpts...)
			if err != nil {
				t.Fatalf("exchange: %v", err)
			}
			if tok.Extra("id_token") == nil || tok.RefreshToken == "" {
				t.Fatalf("got %+v, want an ID token and a refresh token", tok)
			}
		})
	}
}

func TestSecureCookiesOverHTTPS(t *testing.T) {
	e := newFlowEnvOn(t, sqliteStore(t), true)
	conf := e.oauthConfig(spaClient, "openid")
	b := newBrowser(t, e.transport)
	p := b.get(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	checkCookie(t, p.header, "__Host-gatehouse-csrf")
	p = b.submit(p, "login", map[string]string{"username": "alice", "password": alicePassword})
	checkCookie(t, p.header, "__Host-gatehouse-session")
	if !strings.Contains(p.body, "Allow access?") {
		t.Fatalf("got %s, want the consent page: the Secure cookies must work over https", p.body)
	}
}

// checkCookie checks the Set-Cookie for name has the attributes a __Host-
// cookie needs, and HttpOnly and SameSite=Lax.
func checkCookie(t *testing.T, h http.Header, name string) {
	t.Helper()
	for _, c := range (&http.Response{Header: h}).Cookies() {
		if c.Name == name {
			if !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" {
				t.Fatalf("cookie %s: got %+v, want Secure, HttpOnly, SameSite=Lax, Path=/ and no Domain", name, c)
			}
			return
		}
	}
	t.Fatalf("no cookie %s in %q", name, h.Values("Set-Cookie"))
}

func TestAuthorizeErrorPage(t *testing.T) {
	e := newFlowEnv(t)
	good := url.Values{"client_id": {spaClient}, "redirect_uri": {e.callback}, "response_type": {"code"},
		"code_challenge": {s256(oauth2.GenerateVerifier())}, "code_challenge_method": {"S256"}, "state": {"xyz"}}
	with := func(change func(v url.Values)) string {
		v := url.Values{}
		for k, vs := range good {
			v[k] = slices.Clone(vs)
		}
		change(v)
		return v.Encode()
	}
	tests := []struct {
		name  string
		query string
	}{
		{"unknown client", with(func(v url.Values) { v.Set("client_id", "nobody") })},
		{"no client", with(func(v url.Values) { v.Del("client_id") })},
		{"repeated client_id", with(func(v url.Values) { v.Add("client_id", webClient) })},
		{"unregistered redirect_uri", with(func(v url.Values) { v.Set("redirect_uri", "https://evil.example/cb") })},
		{"redirect_uri with another path", with(func(v url.Values) { v.Set("redirect_uri", e.callback+"/x") })},
		{"redirect_uri with a query added", with(func(v url.Values) { v.Set("redirect_uri", e.callback+"?a=b") })},
		{"redirect_uri differing in case", with(func(v url.Values) { v.Set("redirect_uri", strings.ToUpper(e.callback)) })},
		{"missing redirect_uri", with(func(v url.Values) { v.Del("redirect_uri") })},
		{"repeated redirect_uri", with(func(v url.Values) { v.Add("redirect_uri", "https://evil.example/cb") })},
		{"malformed query", "client_id=spa&redirect_uri=%zz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBrowser(t, e.transport)
			b.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			p := b.get(e.issuer + "/oauth2/authorize?" + tt.query)
			if p.status != http.StatusBadRequest || p.header.Get("Location") != "" {
				t.Fatalf("got %d Location %q, want 400 and no redirect", p.status, p.header.Get("Location"))
			}
			checkPage(t, p)
			if !strings.Contains(p.body, "Cannot continue") {
				t.Fatalf("got body %s, want the error page", p.body)
			}
		})
	}
}

func TestAuthorizeErrorRedirect(t *testing.T) {
	e := newFlowEnv(t)
	challenge := s256(oauth2.GenerateVerifier())
	tests := []struct {
		name   string
		params url.Values
		want   string
	}{
		{"response_type token", url.Values{"client_id": {spaClient}, "response_type": {"token"},
			"code_challenge": {challenge}, "code_challenge_method": {"S256"}}, "unsupported_response_type"},
		{"missing response_type", url.Values{"client_id": {spaClient},
			"code_challenge": {challenge}, "code_challenge_method": {"S256"}}, "invalid_request"},
		{"public client without PKCE", url.Values{"client_id": {spaClient}, "response_type": {"code"}}, "invalid_request"},
		{"plain PKCE", url.Values{"client_id": {spaClient}, "response_type": {"code"},
			"code_challenge": {strings.Repeat("a", 43)}, "code_challenge_method": {"plain"}}, "invalid_request"},
		{"PKCE without method", url.Values{"client_id": {webClient}, "response_type": {"code"},
			"code_challenge": {challenge}}, "invalid_request"},
		{"malformed challenge", url.Values{"client_id": {spaClient}, "response_type": {"code"},
			"code_challenge": {"short"}, "code_challenge_method": {"S256"}}, "invalid_request"},
		{"scope not allowed", url.Values{"client_id": {webClient}, "response_type": {"code"}, "scope": {"openid admin"}},
			"invalid_scope"},
		{"client without the grant", url.Values{"client_id": {cliClient}, "response_type": {"code"}}, "unauthorized_client"},
		{"repeated scope", url.Values{"client_id": {webClient}, "response_type": {"code"}, "scope": {"openid", "profile"}},
			"invalid_request"},
		{"unknown prompt", url.Values{"client_id": {webClient}, "response_type": {"code"}, "prompt": {"bogus"}},
			"invalid_request"},
		{"prompt none without a session", url.Values{"client_id": {webClient}, "response_type": {"code"}, "prompt": {"none"}},
			"login_required"},
		{"request object", url.Values{"client_id": {webClient}, "response_type": {"code"}, "request": {"e30.e30."}},
			"request_not_supported"},
		{"response_mode fragment", url.Values{"client_id": {webClient}, "response_type": {"code"}, "response_mode": {"fragment"}},
			"invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBrowser(t, e.transport)
			tt.params.Set("redirect_uri", e.callback)
			tt.params.Set("state", "st4te")
			p := b.get(e.issuer + "/oauth2/authorize?" + tt.params.Encode())
			q := p.url.Query()
			if p.url.Path != "/callback" || q.Get("error") != tt.want || q.Get("state") != "st4te" ||
				q.Get("iss") != e.issuer || q.Has("code") {
				t.Fatalf("got %s, want the redirect URI with error=%s, the state and iss", p.url, tt.want)
			}
		})
	}
}

// s256 is the PKCE S256 challenge of verifier.
func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// codeFor runs a fresh browser through login and consent for client and
// returns the code with its PKCE verifier.
func (e *flowEnv) codeFor(client string, scopes ...string) (code, verifier string) {
	e.t.Helper()
	conf := e.oauthConfig(client, scopes...)
	verifier = oauth2.GenerateVerifier()
	code, _ = e.authorize(newBrowser(e.t, e.transport), conf, "alice", alicePassword, oauth2.S256ChallengeOption(verifier))
	return code, verifier
}

// exchange redeems a code as the public client and returns the status and
// body of the token response.
func (e *flowEnv) exchange(code, verifier, redirectURI string) (int, map[string]any) {
	e.t.Helper()
	form := url.Values{"grant_type": {"authorization_code"}, "client_id": {spaClient}, "code": {code},
		"redirect_uri": {redirectURI}}
	if verifier != "" {
		form.Set("code_verifier", verifier)
	}
	status, body, _ := e.tokenPost(form, nil)
	return status, body
}

func TestCodeExchangeErrors(t *testing.T) {
	e := newFlowEnv(t)
	tests := []struct {
		name string
		run  func(code, verifier string) (int, map[string]any)
		want string
	}{
		{"wrong code_verifier", func(code, _ string) (int, map[string]any) {
			return e.exchange(code, oauth2.GenerateVerifier(), e.callback)
		}, "invalid_grant"},
		{"missing code_verifier", func(code, _ string) (int, map[string]any) {
			return e.exchange(code, "", e.callback)
		}, "invalid_grant"},
		{"other redirect_uri", func(code, verifier string) (int, map[string]any) {
			return e.exchange(code, verifier, e.callback+"/other")
		}, "invalid_grant"},
		{"other client", func(code, verifier string) (int, map[string]any) {
			status, body, _ := e.tokenPost(url.Values{"grant_type": {"authorization_code"}, "code": {code},
				"redirect_uri": {e.callback}, "code_verifier": {verifier}}, &[2]string{webClient, e.secrets[webClient]})
			return status, body
		}, "invalid_grant"},
		{"unknown code", func(_, verifier string) (int, map[string]any) {
			return e.exchange(keyring.RandomToken(32), verifier, e.callback)
		}, "invalid_grant"},
		{"malformed code_verifier", func(code, _ string) (int, map[string]any) {
			return e.exchange(code, "short", e.callback)
		}, "invalid_request"},
		{"missing redirect_uri", func(code, verifier string) (int, map[string]any) {
			return e.exchange(code, verifier, "")
		}, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, verifier := e.codeFor(spaClient, "openid")
			status, body := tt.run(code, verifier)
			if status != http.StatusBadRequest || body["error"] != tt.want {
				t.Fatalf("got %d %v, want 400 %s", status, body, tt.want)
			}
		})
	}
}

func TestMalformedExchangeKeepsTheCode(t *testing.T) {
	e := newFlowEnv(t)
	code, verifier := e.codeFor(spaClient, "openid")
	if status, body := e.exchange(code, "short", e.callback); status != http.StatusBadRequest {
		t.Fatalf("malformed verifier: got %d %v, want 400", status, body)
	}
	if status, body := e.exchange(code, verifier, e.callback); status != http.StatusOK {
		t.Fatalf("got %d %v, want 200: a malformed request must not use up the code", status, body)
	}
}

func TestExpiredCode(t *testing.T) {
	e := newFlowEnv(t)
	code, verifier := e.codeFor(spaClient, "openid")
	e.clock.Advance(61 * time.Second)
	if status, body := e.exchange(code, verifier, e.callback); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("got %d %v, want 400 invalid_grant for a code older than 60 s", status, body)
	}
}

// A replayed code ends the session its first redemption started, however
// late the replay comes (RFC 6749 §4.1.2, RFC 9700 §4.2.4): the refresh
// token is revoked, and so is the access token, at introspection.
func TestCodeReplayRevokesSession(t *testing.T) {
	tests := []struct {
		name  string
		delay time.Duration // between the redemption and the replay
	}{
		{"at once", 0},
		{"after the code expired", 61 * time.Second},
		{"four minutes later", 4 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newFlowEnv(t)
			code, verifier := e.codeFor(spaClient, "openid")
			status, first := e.exchange(code, verifier, e.callback)
			if status != http.StatusOK {
				t.Fatalf("first redemption: got %d %v, want 200", status, first)
			}
			at := first["access_token"].(string)
			if !e.active(at) {
				t.Fatalf("access token of the first redemption: got inactive before the replay, want active")
			}
			e.clock.Advance(tt.delay)
			status, second := e.exchange(code, verifier, e.callback)
			if status != http.StatusBadRequest || second["error"] != "invalid_grant" {
				t.Fatalf("second redemption: got %d %v, want 400 invalid_grant", status, second)
			}
			rt := first["refresh_token"].(string)
			e.checkRevoked(rt)
			status, body, _ := e.tokenPost(url.Values{"grant_type": {"refresh_token"}, "client_id": {spaClient},
				"refresh_token": {rt}}, nil)
			if status != http.StatusBadRequest || body["error"] != "invalid_grant" {
				t.Fatalf("refresh after the replay: got %d %v, want 400 invalid_grant", status, body)
			}
			if e.active(at) {
				t.Errorf("access token of the first redemption: got active after the replay, want inactive")
			}
		})
	}
}

// active introspects token as the confidential web client and reports
// whether the server says it is active.
func (e *flowEnv) active(token string) bool {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.issuer+"/oauth2/introspect", strings.NewReader(url.Values{"token": {token}}.Encode()))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(webClient, url.QueryEscape(e.secrets[webClient]))
	status, body, _ := doJSON(e.t, req)
	if status != http.StatusOK {
		e.t.Fatalf("introspect: got %d %v, want 200", status, body)
	}
	return body["active"] == true
}

// checkRevoked checks the refresh token is stored as revoked.
func (e *flowEnv) checkRevoked(rt string) {
	e.t.Helper()
	stored, err := e.store.GetRefreshToken(context.Background(), e.keyring.Hasher(keyring.PurposeRefreshToken).Hash(rt))
	if err != nil {
		e.t.Fatalf("get refresh token: %v", err)
	}
	if stored.RevokedAt == nil {
		e.t.Fatalf("refresh token of the first redemption is not revoked")
	}
}

func TestConcurrentCodeRedemption(t *testing.T) {
	stores := []struct {
		name string
		open func(t *testing.T) store.Store
	}{
		{"sqlite", func(t *testing.T) store.Store { return sqliteStore(t) }},
		{"postgres", postgresStore},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			e := newFlowEnvOn(t, st.open(t), false)
			code, verifier := e.codeFor(spaClient, "openid")
			const n = 20
			var wg sync.WaitGroup
			results := make([]map[string]any, n)
			statuses := make([]int, n)
			start := make(chan struct{})
			for i := range n {
				wg.Go(func() {
					<-start
					statuses[i], results[i] = e.exchange(code, verifier, e.callback)
				})
			}
			close(start)
			wg.Wait()
			var won []map[string]any
			for i, status := range statuses {
				switch {
				case status == http.StatusOK:
					won = append(won, results[i])
				case status != http.StatusBadRequest || results[i]["error"] != "invalid_grant":
					t.Errorf("redemption %d: got %d %v, want 200 or 400 invalid_grant", i, status, results[i])
				}
			}
			if len(won) != 1 {
				t.Fatalf("got %d successful redemptions of one code, want exactly 1", len(won))
			}
			// The other 19 were replays: what the winner got is revoked,
			// however the requests interleaved.
			e.checkRevoked(won[0]["refresh_token"].(string))
		})
	}
}

func TestLoginFailureAndCancel(t *testing.T) {
	e := newFlowEnv(t)
	conf := e.oauthConfig(webClient, "openid")
	b := newBrowser(t, e.transport)
	p := b.get(conf.AuthCodeURL("st"))
	for _, creds := range []map[string]string{
		{"username": "alice", "password": "wrong-password"},
		{"username": "nobody", "password": alicePassword},
	} {
		p = b.submit(p, "login", creds)
		if p.status != http.StatusOK || !strings.Contains(p.body, "Wrong username or password.") ||
			!strings.Contains(p.body, `role="alert"`) {
			t.Fatalf("got %d %s, want the login page with an error", p.status, p.body)
		}
		for _, c := range (&http.Response{Header: p.header}).Cookies() {
			if c.Name == "gatehouse-session" {
				t.Fatalf("a failed login set a session cookie")
			}
		}
	}
	p = b.submit(p, "cancel", nil, "username", "password")
	if q := p.url.Query(); p.url.Path != "/callback" || q.Get("error") != "access_denied" || q.Get("state") != "st" {
		t.Fatalf("cancel: got %s, want access_denied at the redirect URI", p.url)
	}
}

func TestConsentDenied(t *testing.T) {
	e := newFlowEnv(t)
	conf := e.oauthConfig(webClient, "openid")
	b := newBrowser(t, e.transport)
	p := b.submit(b.get(conf.AuthCodeURL("st")), "login", map[string]string{"username": "alice", "password": alicePassword})
	p = b.submit(p, "deny", nil)
	if q := p.url.Query(); p.url.Path != "/callback" || q.Get("error") != "access_denied" || q.Has("code") {
		t.Fatalf("deny: got %s, want access_denied at the redirect URI", p.url)
	}
	if _, err := e.store.GetConsent(t.Context(), e.alice.ID, webClient); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("consent after deny: got %v, want none stored", err)
	}
}

func TestPrompts(t *testing.T) {
	e := newFlowEnv(t)
	conf := e.oauthConfig(webClient, "openid")
	b := newBrowser(t, e.transport)
	if _, s := e.authorize(b, conf, "alice", alicePassword); !s.login || !s.consent {
		t.Fatalf("first authorization showed %+v, want both pages", s)
	}
	tests := []struct {
		name string
		opts []oauth2.AuthCodeOption
		want seen
	}{
		{"prompt none with a session and consent", []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("prompt", "none")}, seen{}},
		{"prompt login", []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("prompt", "login")}, seen{login: true}},
		{"prompt consent", []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("prompt", "consent")}, seen{consent: true}},
		{"max_age 0", []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("max_age", "0")}, seen{login: true}},
		{"max_age 3600", []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("max_age", "3600")}, seen{}},
		{"prompt login and consent", []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("prompt", "login consent")},
			seen{login: true, consent: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, s := e.authorize(b, conf, "alice", alicePassword, tt.opts...); s != tt.want {
				t.Fatalf("got %+v, want %+v", s, tt.want)
			}
		})
	}
	conf.Scopes = []string{"openid", "profile"}
	p := b.get(conf.AuthCodeURL("st", oauth2.SetAuthURLParam("prompt", "none")))
	if q := p.url.Query(); q.Get("error") != "consent_required" {
		t.Fatalf("prompt none with a new scope: got %s, want consent_required", p.url)
	}
}

func TestPagesRejectCSRF(t *testing.T) {
	e := newFlowEnv(t)
	conf := e.oauthConfig(webClient, "openid")
	victim, attacker := newBrowser(t, e.transport), newBrowser(t, e.transport)
	login := victim.get(conf.AuthCodeURL("st"))
	otherLogin := attacker.get(conf.AuthCodeURL("st"))
	creds := map[string]string{"username": "alice", "password": alicePassword}

	forbidden := func(name string, p page) {
		t.Helper()
		if p.status != http.StatusForbidden || p.url.Path == "/callback" {
			t.Fatalf("%s: got %d at %s, want 403", name, p.status, p.url)
		}
		for _, c := range (&http.Response{Header: p.header}).Cookies() {
			if c.Name == "gatehouse-session" {
				t.Fatalf("%s: a rejected form set a session cookie", name)
			}
		}
	}
	forbidden("login without token", victim.submit(login, "login", creds, "csrf_token"))
	forbidden("login with a token of another browser", victim.submit(login, "login",
		map[string]string{"username": "alice", "password": alicePassword, "csrf_token": otherLogin.forms[0].fields.Get("csrf_token")}))

	consent := victim.submit(login, "login", creds)
	if !strings.Contains(consent.body, "Allow access?") {
		t.Fatalf("got %s, want the consent page", consent.body)
	}
	forbidden("consent without token", victim.submit(consent, "allow", nil, "csrf_token"))
	forbidden("consent with the login form's token", victim.submit(consent, "allow",
		map[string]string{"csrf_token": login.forms[0].fields.Get("csrf_token")}))
	if _, err := e.store.GetConsent(t.Context(), e.alice.ID, webClient); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("consent after forged posts: got %v, want none stored", err)
	}
	// The genuine form still works.
	if p := victim.submit(consent, "allow", nil); p.url.Path != "/callback" || !p.url.Query().Has("code") {
		t.Fatalf("genuine consent: got %s, want a code at the redirect URI", p.url)
	}
}

func TestTamperedRequestForm(t *testing.T) {
	e := newFlowEnv(t)
	b := newBrowser(t, e.transport)
	login := b.get(e.oauthConfig(webClient, "openid").AuthCodeURL("st"))
	sealed := login.forms[0].fields.Get("request")
	flipped := []byte(sealed)
	flipped[len(flipped)/2] ^= 1
	p := b.submit(login, "login", map[string]string{"username": "alice", "password": alicePassword, "request": string(flipped)})
	if p.status != http.StatusBadRequest || p.url.Path == "/callback" {
		t.Fatalf("got %d at %s, want 400: a changed request must not be accepted", p.status, p.url)
	}
}

// replayingStore runs a hook before the next refresh token is stored: the
// moment between a code's redemption and the storing of what it issued.
type replayingStore struct {
	store.Store
	mu     sync.Mutex
	before func()
}

func (s *replayingStore) CreateRefreshToken(ctx context.Context, t store.RefreshToken) error {
	s.mu.Lock()
	hook := s.before
	s.before = nil
	s.mu.Unlock()
	if hook != nil {
		hook()
	}
	return s.Store.CreateRefreshToken(ctx, t)
}

func TestCodeReplayDuringRedemption(t *testing.T) {
	st := &replayingStore{Store: sqliteStore(t)}
	e := newFlowEnvOn(t, st, false)
	code, verifier := e.codeFor(spaClient, "openid")
	st.before = func() {
		if status, body := e.exchange(code, verifier, e.callback); status != http.StatusBadRequest {
			t.Errorf("replay: got %d %v, want 400", status, body)
		}
	}
	status, body := e.exchange(code, verifier, e.callback)
	if status != http.StatusOK {
		t.Fatalf("first redemption: got %d %v, want 200", status, body)
	}
	// The replay revoked the session before its refresh token existed; the
	// token must end up revoked all the same.
	e.checkRevoked(body["refresh_token"].(string))
}

func TestConsentForClientWithoutScopes(t *testing.T) {
	e := newFlowEnv(t)
	conf := e.oauthConfig(bareClient)
	b := newBrowser(t, e.transport)
	if _, s := e.authorize(b, conf, "alice", alicePassword); !s.login || !s.consent {
		t.Fatalf("first authorization showed %+v, want login and consent: the client learns who alice is", s)
	}
	code, s := e.authorize(b, conf, "", "")
	if s.login || s.consent {
		t.Fatalf("second authorization showed %+v, want neither page", s)
	}
	tok, err := conf.Exchange(t.Context(), code)
	if err != nil || tok.Extra("id_token") != nil || tok.RefreshToken != "" {
		t.Fatalf("exchange: got %+v, %v, want an access token only", tok, err)
	}
}

// TestBrowserSessionEndsWithUserChange: the authorization server's browser
// session ends when the user's tokens do — a password change, disabling
// (and enabling again) and revoking all sessions send the browser back to
// the login form; a login right after the change holds.
func TestBrowserSessionEndsWithUserChange(t *testing.T) {
	tests := []struct {
		name     string
		password string // alice's password after the change
		change   func(ctx context.Context, m *accounts.Manager, at time.Time) error
	}{
		{"password changed", "alice-new-password-2", func(ctx context.Context, m *accounts.Manager, at time.Time) error {
			_, err := m.ChangePassword(ctx, "alice", "alice-new-password-2", at)
			return err
		}},
		{"disabled and enabled again", alicePassword, func(ctx context.Context, m *accounts.Manager, at time.Time) error {
			if _, err := m.Disable(ctx, "alice", at); err != nil {
				return err
			}
			return m.SetDisabled(ctx, "alice", false)
		}},
		{"all sessions revoked", alicePassword, func(ctx context.Context, m *accounts.Manager, at time.Time) error {
			_, err := m.EndTokens(ctx, "alice", at)
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newFlowEnv(t)
			m := &accounts.Manager{Store: e.store, Params: cheap}
			conf := e.oauthConfig(webClient, "openid")
			b := newBrowser(t, e.transport)
			if _, s := e.authorize(b, conf, "alice", alicePassword); !s.login {
				t.Fatalf("first authorization showed %+v, want the login page", s)
			}
			if _, s := e.authorize(b, conf, "alice", alicePassword); s.login {
				t.Fatalf("second authorization showed the login page, want the session to carry it")
			}
			if err := tt.change(t.Context(), m, e.clock.Now()); err != nil {
				t.Fatal(err)
			}
			if _, s := e.authorize(b, conf, "alice", tt.password); !s.login {
				t.Errorf("after the change: got %+v, want the login page again", s)
			}
			if _, s := e.authorize(b, conf, "alice", tt.password); s.login {
				t.Errorf("the login right after the change did not hold: got the login page again")
			}
		})
	}
}
