package authserver

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/accounts"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

func TestMetricsAfterAGrant(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	secret := f.addClientWithRefresh("cli")
	f.addUser("alice", "alice-password")
	if r := f.passwordGrant("cli", secret, "alice", "alice-password"); r.status != 200 {
		t.Fatalf("login: got %d %v", r.status, r.body)
	}
	f.passwordGrant("cli", secret, "alice", "wrong-password")
	f.token(url.Values{"grant_type": {"password"}}, "cli", "wrong-secret")
	get(t, f.public, "/oauth2/jwks")
	status, body := get(t, f.adminSrv, "/metrics")
	if status != 200 {
		t.Fatalf("GET /metrics: got %d", status)
	}
	for _, want := range []string{
		`gatehouse_authserver_requests_total{endpoint="/oauth2/token",grant="password",outcome="ok"} 1`,
		`gatehouse_authserver_requests_total{endpoint="/oauth2/token",grant="password",outcome="invalid_grant"} 1`,
		`gatehouse_authserver_requests_total{endpoint="/oauth2/token",grant="password",outcome="invalid_client"} 1`,
		`gatehouse_authserver_requests_total{endpoint="/oauth2/jwks",grant="",outcome="ok"} 1`,
		`gatehouse_authserver_request_duration_seconds_count{endpoint="/oauth2/token",grant="password"} 3`,
		`gatehouse_authserver_password_hash_duration_seconds_count 2`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics: missing %s\n%s", want, body)
		}
	}
}

func TestMetricsLabelsStayBounded(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	for _, gt := range []string{"x1", "x2", strings.Repeat("y", 100)} {
		f.token(url.Values{"grant_type": {gt}}, "nobody", "nothing")
	}
	get(t, f.public, "/random/path/1")
	get(t, f.public, "/random/path/2")
	_, body := get(t, f.adminSrv, "/metrics")
	for _, bad := range []string{"x1", "yyyy", "/random"} {
		if strings.Contains(body, bad) {
			t.Errorf("metrics hold the request's own value %q", bad)
		}
	}
	if !strings.Contains(body, `grant="unsupported"`) || !strings.Contains(body, `endpoint="unmatched"`) {
		t.Errorf("metrics: want unsupported grants and unmatched paths folded into one label value\n%s", body)
	}
}

func TestTwoServersShareARegistry(t *testing.T) {
	a := newFixture(t, fixtureOptions{})
	if _, err := New(t.Context(), Config{Issuer: "http://127.0.0.1:1", Store: a.store, Keyring: a.keyring,
		Registerer: a.registry, PasswordParams: cheapParams, Logger: slog.New(slog.DiscardHandler)}); err != nil {
		t.Fatalf("second server on the same registry: %v", err)
	}
}

// The audit log of a full flow — failed and successful logins, refreshes,
// reuse detection, a failed client authentication — never holds a secret or
// a token.
func TestAuditLogHoldsNoSecrets(t *testing.T) {
	f := newFixture(t, fixtureOptions{config: func(c *Config) { c.RefreshGrace = -1 }})
	secret := f.addClientWithRefresh("cli")
	const pw = "Correct-Horse-Battery-Staple"
	f.addUser("alice", pw)
	f.passwordGrant("cli", secret, "alice", pw+"-typo")
	f.passwordGrant("cli", secret+"x", "alice", pw)
	r := f.passwordGrant("cli", secret, "alice", pw)
	if r.status != 200 {
		t.Fatalf("login: got %d %v", r.status, r.body)
	}
	secrets := []string{pw, pw + "-typo", secret, r.str("access_token"), r.str("refresh_token")}
	rt := r.str("refresh_token")
	for range 2 {
		r = f.token(url.Values{"grant_type": {oauth.GrantRefreshToken}, "refresh_token": {rt}}, "cli", secret)
		if r.status != 200 {
			t.Fatalf("refresh: got %d %v", r.status, r.body)
		}
		secrets = append(secrets, r.str("access_token"), r.str("refresh_token"))
		rt = r.str("refresh_token")
	}
	// Reuse of the first refresh token: the family is revoked.
	if r := f.token(url.Values{"grant_type": {oauth.GrantRefreshToken}, "refresh_token": {secrets[4]}}, "cli", secret); r.status == 200 {
		t.Fatalf("reuse: got 200, want an error")
	}
	r = f.passwordGrant("cli", secret, "alice", pw)
	secrets = append(secrets, r.str("access_token"), r.str("refresh_token"))
	if revoked, err := f.admin().RevokeSessions(t.Context(), "alice"); err != nil || len(revoked) != 1 {
		t.Fatalf("revoke sessions: got %v, %v, want the last login's", revoked, err)
	}
	log := f.log.String()
	for _, want := range []string{"login failed", "login succeeded", "token issued", "token refreshed",
		"refresh token reuse detected", "client authentication failed", "admin: session revoked"} {
		if !strings.Contains(log, want) {
			t.Errorf("audit log lacks %q", want)
		}
	}
	for _, s := range secrets {
		if s == "" {
			t.Fatalf("a secret of the flow is empty")
		}
		if strings.Contains(log, s) {
			t.Errorf("the log holds a secret or token: %.12s...", s)
		}
		// Nor a recognizable part of a token (its signature or payload).
		for _, part := range strings.Split(s, ".") {
			if len(part) >= 16 && strings.Contains(log, part) {
				t.Errorf("the log holds part of a token: %.12s...", part)
			}
		}
	}
}

func TestGarbageCollection(t *testing.T) {
	for _, kind := range storeKinds() {
		t.Run(kind, func(t *testing.T) {
			f := newFixture(t, fixtureOptions{store: openStore(t, kind), config: func(c *Config) { c.EventRetention = time.Hour }})
			ctx, st := t.Context(), f.store
			f.addUser("alice", "alice-password")
			f.addClient(accounts.ClientSpec{ID: "cli", Grants: []string{oauth.GrantPassword}})
			now := f.clock.Now().UTC()
			rt := func(hash string, expires time.Time) store.RefreshToken {
				return store.RefreshToken{Hash: hash, FamilyID: "fam-" + hash, ClientID: "cli", UserID: "u1",
					AuthTime: now.Add(-time.Hour), CreatedAt: now.Add(-time.Hour), ExpiresAt: expires}
			}
			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			must(st.CreateRefreshToken(ctx, rt("expired", now.Add(-time.Second))))
			must(st.CreateRefreshToken(ctx, rt("live", now.Add(time.Hour))))
			must(st.UseJTI(ctx, "old-jti", now.Add(-time.Second), now.Add(-time.Minute)))
			must(st.UseJTI(ctx, "new-jti", now.Add(time.Minute), now))
			_, err := st.RecordLoginFailure(ctx, "user:gone", now.Add(-3*time.Hour), time.Hour, func(int) time.Duration { return 0 })
			must(err)
			_, err = st.RecordLoginFailure(ctx, "user:kept", now, time.Hour, func(int) time.Duration { return 0 })
			must(err)
			_, err = st.AppendEvent(ctx, store.Event{Type: "old", CreatedAt: now.Add(-2 * time.Hour)})
			must(err)
			_, err = st.AppendEvent(ctx, store.Event{Type: "recent", CreatedAt: now.Add(-30 * time.Minute)})
			must(err)

			n, err := f.srv.collectGarbage(ctx)
			if err != nil || n < 4 {
				t.Fatalf("collectGarbage: got %d, %v, want at least 4 records removed", n, err)
			}
			if _, err := st.GetRefreshToken(ctx, "expired"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("expired refresh token: got %v, want it deleted", err)
			}
			if _, err := st.GetRefreshToken(ctx, "live"); err != nil {
				t.Errorf("live refresh token: got %v, want it kept", err)
			}
			must(st.UseJTI(ctx, "old-jti", now.Add(time.Minute), now)) // free again
			if err := st.UseJTI(ctx, "new-jti", now.Add(time.Minute), now); !errors.Is(err, store.ErrAlreadyExists) {
				t.Errorf("live jti: got %v, want it kept", err)
			}
			if th, _ := st.GetThrottle(ctx, "user:kept"); th.Failures != 1 {
				t.Errorf("live throttle: got %+v, want it kept", th)
			}
			events, _ := st.ListEvents(ctx, 0, 10)
			if len(events) != 1 || events[0].Type != "recent" {
				t.Errorf("events: got %+v, want only the recent one", events)
			}
		})
	}
}

// Garbage collection keeps a redeemed authorization code while its session
// lives, so a replay long after the code expired still ends the session.
func TestGarbageCollectionKeepsRedeemedCodes(t *testing.T) {
	for _, kind := range storeKinds() {
		t.Run(kind, func(t *testing.T) {
			f := newFixture(t, fixtureOptions{store: openStore(t, kind)})
			ctx := t.Context()
			u := f.addUser("alice", "alice-password")
			const redirect = "https://app.example/callback"
			secret := f.addClient(accounts.ClientSpec{ID: "app", RedirectURIs: []string{redirect},
				Grants: []string{oauth.GrantAuthorizationCode, oauth.GrantRefreshToken}})
			form := f.newCode("app", u.ID, redirect)
			first := f.token(form, "app", secret)
			if first.status != http.StatusOK {
				t.Fatalf("redemption: got %d %v, want 200", first.status, first.body)
			}

			f.clock.Advance(2 * time.Hour) // the code expired long ago; the refresh token lives
			if _, err := f.srv.collectGarbage(ctx); err != nil {
				t.Fatalf("collectGarbage: got %v, want nil", err)
			}
			if replay := f.token(form, "app", secret); replay.status != http.StatusBadRequest || replay.str("error") != oauth.ErrInvalidGrant {
				t.Fatalf("replay: got %d %v, want 400 invalid_grant", replay.status, replay.body)
			}
			rt, err := f.store.GetRefreshToken(ctx, f.srv.refreshHasher.Hash(first.str("refresh_token")))
			if err != nil || rt.RevokedAt == nil {
				t.Fatalf("refresh token after the replay: got %+v, %v, want it revoked", rt, err)
			}
		})
	}
}

// Events live at least as long as the longest access token, whatever
// EventRetention says.
func TestEventRetentionCoversTokenLifetimes(t *testing.T) {
	f := newFixture(t, fixtureOptions{config: func(c *Config) { c.EventRetention = time.Second }})
	ctx := t.Context()
	f.addClient(accounts.ClientSpec{ID: "long", Grants: []string{oauth.GrantClientCredentials}})
	if _, err := f.store.UpdateClient(ctx, "long", func(c *store.Client) error { c.AccessTokenTTL = time.Hour; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.AppendEvent(ctx, store.Event{Type: "recent", CreatedAt: f.clock.Now().Add(-50 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.srv.collectGarbage(ctx); err != nil {
		t.Fatal(err)
	}
	if events, _ := f.store.ListEvents(ctx, 0, 10); len(events) != 1 {
		t.Fatalf("events: got %d, want the event younger than the longest token lifetime kept", len(events))
	}
}

func TestRunCollectsGarbage(t *testing.T) {
	f := newFixture(t, fixtureOptions{config: func(c *Config) { c.GCInterval = 10 * time.Millisecond }})
	now := f.clock.Now().UTC()
	if err := f.store.UseJTI(t.Context(), "stale", now.Add(-time.Second), now.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- f.srv.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(f.log.String(), "garbage collected") {
		if time.Now().After(deadline) {
			t.Fatalf("Run never collected garbage; log:\n%s", f.log.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: got %v, want nil after cancel", err)
	}
}

func TestAdminHandlerRefusesBadBodies(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	f.addUser("alice", "alice-password")
	broken := []string{"", "{", `{} {}`, strings.Repeat("[", 5000), `{"x":1}`, `{"username":5}`, "[]", `"text"`}
	odd := []string{"null", "{}", `{"jwks":{"keys":[{"kty":"EC"}]},"client_id":"c","grant_types":["client_credentials"],"token_endpoint_auth_method":"private_key_jwt"}`}
	for _, ep := range adminBodyEndpoints {
		for _, body := range broken {
			if status := adminStatus(t, f, ep.method, ep.path, "application/json", []byte(body)); status != http.StatusBadRequest {
				t.Errorf("%s %s %.20q: got %d, want 400", ep.method, ep.path, body, status)
			}
		}
		for _, body := range odd {
			if status := adminStatus(t, f, ep.method, ep.path, "application/json", []byte(body)); status >= 500 {
				t.Errorf("%s %s %.20q: got %d, want no 5xx", ep.method, ep.path, body, status)
			}
		}
		if status := adminStatus(t, f, ep.method, ep.path, "text/plain", []byte(`{}`)); status != http.StatusBadRequest {
			t.Errorf("%s %s as text/plain: got %d, want 400", ep.method, ep.path, status)
		}
		big := append([]byte(`{"username":"`), bytes.Repeat([]byte("a"), 200<<10)...)
		if status := adminStatus(t, f, ep.method, ep.path, "application/json", big); status != http.StatusRequestEntityTooLarge {
			t.Errorf("%s %s with a 200 KiB body: got %d, want 413", ep.method, ep.path, status)
		}
	}
}

var adminBodyEndpoints = []struct{ method, path string }{
	{http.MethodPost, "/v1/users"},
	{http.MethodPut, "/v1/users/alice/password"},
	{http.MethodPut, "/v1/users/alice/roles"},
	{http.MethodPost, "/v1/clients"},
	{http.MethodPost, "/v1/keys/rotate"},
}

// adminStatus sends body to the admin API with the admin token and returns
// the status.
func adminStatus(t testing.TB, f *fixture, method, path, contentType string, body []byte) int {
	req, err := http.NewRequest(method, f.adminSrv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testAdminToken)
	req.Header.Set("Content-Type", contentType)
	resp, err := f.adminSrv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// FuzzAdminAPIBodies sends arbitrary bodies to every admin endpoint that
// reads one: the answer is never a 5xx, and the server never panics (a
// panic in a handler would reach the test as a broken connection).
func FuzzAdminAPIBodies(f *testing.F) {
	for i, seed := range []string{
		`{"username":"bob","password":"bob-password","roles":["consumer"]}`,
		`{"password":"another-password"}`,
		`{"roles":["admin"]}`,
		`{"client_id":"c1","grant_types":["client_credentials"],"scopes":["orders"]}`,
		`{"client_id":"c2","token_endpoint_auth_method":"private_key_jwt","grant_types":["client_credentials"],"jwks":{"keys":[]}}`,
		`{"alg":"EdDSA"}`,
	} {
		f.Add(uint8(i), []byte(seed))
	}
	fx := newFixture(f, fixtureOptions{})
	fx.addUser("alice", "alice-password")
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		ep := adminBodyEndpoints[int(which)%len(adminBodyEndpoints)]
		if status := adminStatus(t, fx, ep.method, ep.path, "application/json", body); status >= 500 {
			t.Fatalf("%s %s %q: got %d", ep.method, ep.path, body, status)
		}
	})
}

// An oversized token request gets its 413 answer: the metrics wrapper must
// not hide the server's connection handling from http.MaxBytesReader.
func TestOversizedTokenRequestIsAnswered(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	body := strings.NewReader("grant_type=password&username=" + strings.Repeat("a", 3<<20))
	req, _ := http.NewRequest(http.MethodPost, f.srv.TokenURL(), body)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Expect", "100-continue") // as curl sends for large bodies
	tr := f.public.Client().Transport.(*http.Transport).Clone()
	tr.ExpectContinueTimeout = 5 * time.Second
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatalf("got %v, want a 413 answer", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("got %d, want 413", resp.StatusCode)
	}
	// The server closes the connection instead of draining 3 MiB; without
	// it, clients that stream the body (curl) sometimes see a reset.
	if !resp.Close {
		t.Fatalf("got a 413 without Connection: close, want the server to close the connection")
	}
}
