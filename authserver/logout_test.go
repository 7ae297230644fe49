package authserver_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/jose"
)

// loggedIn is a browser logged in as alice through the web client, with the
// tokens the client got.
type loggedIn struct {
	b                    *browser
	idToken, refresh     string
	sessionCookie        *http.Cookie
	conf                 *oauth2.Config
	issuerURL, logoutURL *url.URL
}

func (e *flowEnv) logIn() loggedIn {
	e.t.Helper()
	conf := e.oauthConfig(webClient, "openid")
	b := newBrowser(e.t, e.transport)
	code, s := e.authorize(b, conf, "alice", alicePassword)
	if !s.login {
		e.t.Fatalf("first authorization showed %+v, want the login page", s)
	}
	tok, err := conf.Exchange(oidc.ClientContext(e.t.Context(), &http.Client{Transport: e.transport}), code)
	if err != nil {
		e.t.Fatalf("exchange: %v", err)
	}
	l := loggedIn{b: b, refresh: tok.RefreshToken, conf: conf}
	l.idToken, _ = tok.Extra("id_token").(string)
	l.issuerURL, _ = url.Parse(e.issuer)
	l.logoutURL, _ = url.Parse(e.issuer + "/oauth2/logout")
	for _, c := range b.client.Jar.Cookies(l.issuerURL) {
		if c.Name == "gatehouse-session" {
			l.sessionCookie = c
		}
	}
	if l.idToken == "" || l.refresh == "" || l.sessionCookie == nil {
		e.t.Fatalf("got id token %q refresh token %q session cookie %v, want all three", l.idToken, l.refresh, l.sessionCookie)
	}
	return l
}

// checkLoggedOut checks the browser, and another one with a copy of its
// old session cookie, both see the login form again.
func (e *flowEnv) checkLoggedOut(l loggedIn) {
	e.t.Helper()
	if _, s := e.authorize(l.b, l.conf, "alice", alicePassword); !s.login {
		e.t.Errorf("after logout: got %+v, want the login form again", s)
	}
	thief := newBrowser(e.t, e.transport)
	thief.client.Jar.SetCookies(l.issuerURL, []*http.Cookie{{Name: l.sessionCookie.Name, Value: l.sessionCookie.Value}})
	if p := thief.get(l.conf.AuthCodeURL("st")); p.forms == nil || !p.forms[0].fields.Has("password") {
		e.t.Errorf("a copy of the ended session cookie: got %s (%d), want the login form", p.url, p.status)
	}
}

// checkLoggedIn checks the browser's session still carries an authorization.
func (e *flowEnv) checkLoggedIn(l loggedIn) {
	e.t.Helper()
	if _, s := e.authorize(l.b, l.conf, "alice", alicePassword); s.login {
		e.t.Errorf("got the login form, want the session to hold")
	}
}

func TestLogoutWithIDTokenHint(t *testing.T) {
	tests := []struct {
		name    string
		post    bool
		advance time.Duration // before logout
	}{
		{"GET", false, 0},
		{"POST", true, 0},
		{"expired hint", false, time.Hour}, // ID tokens live 5m; a hint may have expired
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newFlowEnv(t)
			l := e.logIn()
			e.clock.Advance(tt.advance)
			v := url.Values{"id_token_hint": {l.idToken}, "post_logout_redirect_uri": {e.signedOut}, "state": {"st 1"}}
			var p page
			if tt.post {
				p = l.b.post(l.logoutURL.String(), v)
			} else {
				p = l.b.get(l.logoutURL.String() + "?" + v.Encode())
			}
			if got := p.url.Scheme + "://" + p.url.Host + p.url.Path; got != e.signedOut || p.url.Query().Get("state") != "st 1" {
				t.Fatalf("got %s (%d), want %s with the state, without confirmation:\n%s", p.url, p.status, e.signedOut, p.body)
			}
			e.checkLoggedOut(l)
			// The RP's session (the hint's sid) is revoked with the login.
			if e.active(l.refresh) {
				t.Errorf("the refresh token of the hint's session is still active")
			}
		})
	}
}

func TestLogoutConfirmation(t *testing.T) {
	e := newFlowEnv(t)
	start := url.Values{"client_id": {webClient}, "post_logout_redirect_uri": {e.signedOut}, "state": {"s"}}.Encode()

	// Without a hint the user is asked, and the form resists forgery.
	l := e.logIn()
	other := e.logIn()
	ask := l.b.get(l.logoutURL.String() + "?" + start)
	if ask.status != http.StatusOK || !strings.Contains(ask.body, "Sign out?") {
		t.Fatalf("got %d:\n%s\nwant the confirmation page", ask.status, ask.body)
	}
	checkPage(t, ask)
	if csp := ask.header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self'") {
		t.Errorf("Content-Security-Policy %q: want form-action 'self'", csp)
	}
	otherAsk := other.b.get(other.logoutURL.String() + "?" + start)
	for name, p := range map[string]page{
		"without token": l.b.submit(ask, "logout", nil, "csrf_token"),
		"with a token of another browser": l.b.submit(ask, "logout",
			map[string]string{"csrf_token": otherAsk.forms[0].fields.Get("csrf_token")}),
		"with the request of another form": l.b.submit(ask, "logout",
			map[string]string{"request": otherAsk.forms[0].fields.Get("request") + "x"}),
	} {
		if p.status < 400 || p.status >= 500 || p.url.Path == "/signed-out" {
			t.Errorf("%s: got %d at %s, want a 4xx error page", name, p.status, p.url)
		}
	}
	e.checkLoggedIn(l)

	// Staying signed in changes nothing.
	if p := l.b.submit(ask, "stay", nil); p.status != http.StatusOK || !strings.Contains(p.body, "still signed in") {
		t.Fatalf("stay: got %d %s:\n%s", p.status, p.url, p.body)
	}
	e.checkLoggedIn(l)

	ask = l.b.get(l.logoutURL.String() + "?" + start)
	p := l.b.submit(ask, "logout", nil)
	if p.url.Path != "/signed-out" || p.url.Query().Get("state") != "s" {
		t.Fatalf("confirmed logout: got %s (%d), want the post-logout redirect URI with the state", p.url, p.status)
	}
	e.checkLoggedOut(l)
	e.checkLoggedIn(other) // another browser's login is not touched

	// A hint of another user is no proof either; without a redirect URI
	// the user sees a page saying so.
	alice2 := e.logIn()
	bob := newBrowser(t, e.transport)
	if _, s := e.authorize(bob, alice2.conf, "bob", bobPassword); !s.login {
		t.Fatalf("bob: got %+v, want the login form", s)
	}
	ask = bob.get(e.issuer + "/oauth2/logout?id_token_hint=" + url.QueryEscape(alice2.idToken))
	if !strings.Contains(ask.body, "Sign out?") {
		t.Fatalf("hint of another user: got %d:\n%s\nwant the confirmation page", ask.status, ask.body)
	}
	p = bob.submit(ask, "logout", nil)
	if p.status != http.StatusOK || !strings.Contains(p.body, "You are signed out") {
		t.Fatalf("got %d at %s:\n%s\nwant the signed-out page", p.status, p.url, p.body)
	}
	checkPage(t, p)
	if !e.active(alice2.refresh) {
		t.Errorf("bob's logout revoked alice's session named by the hint")
	}
	e.checkLoggedIn(alice2)
}

func TestLogoutRefusesBadRequests(t *testing.T) {
	e := newFlowEnv(t)
	l := e.logIn()
	signed := strings.Split(l.idToken, ".")
	otherKey, err := jose.GenerateKey(jose.ES256)
	if err != nil {
		t.Fatal(err)
	}
	otherIssuer, err := jose.Sign(otherKey, jose.TypeJWT, jose.Claims{Issuer: "https://other.example", Subject: e.alice.ID,
		Audience: jose.Audience{webClient}, Expiry: jose.NewNumericDate(time.Now().Add(time.Minute))})
	if err != nil {
		t.Fatal(err)
	}
	forged := signed[0] + "." + signed[1] + "." + strings.Split(otherIssuer, ".")[2]
	status, tokens, _ := e.tokenPost(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {l.refresh}},
		&[2]string{webClient, e.secrets[webClient]})
	if status != http.StatusOK {
		t.Fatalf("refresh: got %d %v", status, tokens)
	}
	l.refresh = tokens["refresh_token"].(string)
	accessToken := tokens["access_token"].(string)

	ok := url.Values{"client_id": {webClient}, "post_logout_redirect_uri": {e.signedOut}}
	with := func(k, v string) string {
		q := url.Values{"client_id": ok["client_id"], "post_logout_redirect_uri": ok["post_logout_redirect_uri"]}
		q.Set(k, v)
		return q.Encode()
	}
	tests := []struct{ name, query string }{
		{"unregistered redirect", with("post_logout_redirect_uri", "https://evil.example/signed-out")},
		{"prefix of a registered one", with("post_logout_redirect_uri", strings.TrimSuffix(e.signedOut, "-out"))},
		{"registered one with a path added", with("post_logout_redirect_uri", e.signedOut+"/x")},
		{"different scheme", with("post_logout_redirect_uri", strings.Replace(e.signedOut, "http:", "https:", 1))},
		{"with fragment", with("post_logout_redirect_uri", e.signedOut+"#f")},
		{"another client's", "client_id=" + bareClient + "&post_logout_redirect_uri=" + url.QueryEscape(e.signedOut)},
		{"redirect without a client", "post_logout_redirect_uri=" + url.QueryEscape(e.signedOut)},
		{"unknown client", with("client_id", "nobody")},
		{"repeated redirect", ok.Encode() + "&post_logout_redirect_uri=" + url.QueryEscape(e.signedOut)},
		{"hint of another issuer", with("id_token_hint", otherIssuer)},
		{"hint with a forged signature", with("id_token_hint", forged)},
		{"hint for another client", "client_id=" + spaClient + "&id_token_hint=" + l.idToken},
		{"access token as hint", with("id_token_hint", accessToken)},
		{"garbage hint", with("id_token_hint", "a.b.c")},
		{"long state", with("state", strings.Repeat("s", 2000))},
		{"malformed query", "client_id=web&post_logout_redirect_uri=%zz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, post := range []bool{false, true} {
				var p page
				l.b.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
				if post {
					resp, err := l.b.client.Post(l.logoutURL.String(), "application/x-www-form-urlencoded", strings.NewReader(tt.query))
					if err != nil {
						t.Fatal(err)
					}
					p = l.b.read(resp)
				} else {
					p = l.b.get(l.logoutURL.String() + "?" + tt.query)
				}
				l.b.client.CheckRedirect = nil
				if p.status != http.StatusBadRequest || p.header.Get("Location") != "" {
					t.Fatalf("post %v: got %d Location %q, want 400 and no redirect", post, p.status, p.header.Get("Location"))
				}
				checkPage(t, p)
				if !strings.Contains(p.body, "Cannot continue") {
					t.Fatalf("got body %s, want the error page", p.body)
				}
			}
		})
	}
	e.checkLoggedIn(l)
	if !e.active(l.refresh) {
		t.Errorf("a refused logout revoked the session")
	}
}

func TestLogoutWithoutSession(t *testing.T) {
	e := newFlowEnv(t)
	b := newBrowser(t, e.transport)
	p := b.get(e.issuer + "/oauth2/logout?client_id=web&state=x&post_logout_redirect_uri=" + url.QueryEscape(e.signedOut))
	if p.url.Path != "/signed-out" || p.url.Query().Get("state") != "x" {
		t.Fatalf("got %s (%d), want the post-logout redirect URI", p.url, p.status)
	}
	// A POST without the session cookie (SameSite=Lax keeps it from a
	// cross-site form) goes on as a top-level GET, which carries it.
	b.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	p = b.post(e.issuer+"/oauth2/logout", url.Values{"client_id": {webClient}, "state": {"x"}})
	if loc := p.header.Get("Location"); p.status != http.StatusSeeOther || loc != e.issuer+"/oauth2/logout?client_id=web&state=x" {
		t.Fatalf("POST without a session: got %d Location %q, want 303 to the GET of the same request", p.status, loc)
	}
	b.client.CheckRedirect = nil
	p = b.get(e.issuer + "/oauth2/logout")
	if p.status != http.StatusOK || !strings.Contains(p.body, "You are signed out") {
		t.Fatalf("got %d:\n%s\nwant the signed-out page", p.status, p.body)
	}
	checkPage(t, p)
}

// TestLogoutHintFromAnEarlierLogin: an ID token of the same user from an
// earlier login of the browser does not end the current session without
// confirmation; one from the current login does.
func TestLogoutHintFromAnEarlierLogin(t *testing.T) {
	e := newFlowEnv(t)
	l := e.logIn() // hint A, from the first login
	e.clock.Advance(2 * time.Second)
	code, s := e.authorize(l.b, l.conf, "alice", alicePassword, oauth2.SetAuthURLParam("prompt", "login"))
	if !s.login {
		t.Fatalf("prompt=login showed %+v, want the login page", s)
	}
	tok, err := l.conf.Exchange(oidc.ClientContext(t.Context(), &http.Client{Transport: e.transport}), code)
	if err != nil {
		t.Fatal(err)
	}
	current, _ := tok.Extra("id_token").(string)
	logout := func(hint string) page {
		v := url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {e.signedOut}}
		return l.b.get(l.logoutURL.String() + "?" + v.Encode())
	}
	if p := logout(l.idToken); p.url.Path != "/oauth2/logout" || p.forms == nil {
		t.Fatalf("hint from the earlier login: got %s (%d), want the confirmation page", p.url, p.status)
	}
	e.checkLoggedIn(l)
	if p := logout(current); p.url.Scheme+"://"+p.url.Host+p.url.Path != e.signedOut {
		t.Fatalf("hint from the current login: got %s (%d), want %s without confirmation", p.url, p.status, e.signedOut)
	}
}
