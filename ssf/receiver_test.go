package ssf_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/authserver"
	"github.com/gatehouse-dev/gatehouse/gateway"
	"github.com/gatehouse-dev/gatehouse/internal/accounts"
	"github.com/gatehouse-dev/gatehouse/internal/keyring"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/internal/password"
	"github.com/gatehouse-dev/gatehouse/internal/secevent"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/postgres"
	"github.com/gatehouse-dev/gatehouse/internal/store/sqlite"
	"github.com/gatehouse-dev/gatehouse/internal/store/storetest"
	"github.com/gatehouse-dev/gatehouse/outbound"
	"github.com/gatehouse-dev/gatehouse/resource"
	"github.com/gatehouse-dev/gatehouse/ssf"
)

var cheap = password.Params{Memory: 64, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16}

// env is an authorization server on loopback whose handler a test can
// replace (a restart) or take down (an outage).
type env struct {
	t       testing.TB
	store   store.Store
	keyring *keyring.Keyring
	accts   *accounts.Manager
	srv     *httptest.Server
	issuer  string
	config  func(*authserver.Config) // if set, changes each server's configuration

	mu      sync.Mutex
	handler http.Handler
	down    bool
	stopRun context.CancelFunc // the background work of the running server
}

func newEnv(t testing.TB, st store.Store, kr *keyring.Keyring) *env {
	return newEnvWith(t, st, kr, nil)
}

// newEnvWith is newEnv with config changing the authorization server's
// configuration.
func newEnvWith(t testing.TB, st store.Store, kr *keyring.Keyring, config func(*authserver.Config)) *env {
	e := &env{t: t, store: st, keyring: kr, config: config}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		h, down := e.handler, e.down
		e.mu.Unlock()
		if down || h == nil {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(e.srv.Close)
	e.issuer = e.srv.URL
	e.accts = &accounts.Manager{Store: st, Secrets: kr.Hasher(keyring.PurposeClientSecret), Params: cheap}
	e.start()
	return e
}

// start serves a new authorization server on the store (a restart: the
// previous one's background work stops and its connections drop) and runs
// its background work until the test ends.
func (e *env) start() *authserver.Server {
	e.t.Helper()
	cfg := authserver.Config{Issuer: e.issuer, Store: e.store, Keyring: e.keyring,
		Audience: []string{"api"}, PasswordParams: cheap, Logger: slog.New(slog.DiscardHandler)}
	if e.config != nil {
		e.config(&cfg)
	}
	srv, err := authserver.New(e.t.Context(), cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.t.Cleanup(cancel)
	go srv.Run(ctx)
	e.mu.Lock()
	stop := e.stopRun
	e.handler, e.stopRun = srv, cancel
	e.mu.Unlock()
	if stop != nil { // as a process that ends: its work stops, its connections drop
		stop()
		e.srv.CloseClientConnections()
	}
	return srv
}

func (e *env) setDown(down bool) {
	e.mu.Lock()
	e.down = down
	e.mu.Unlock()
}

func (e *env) client(spec accounts.ClientSpec) string {
	e.t.Helper()
	_, secret, err := e.accts.AddClient(e.t.Context(), spec)
	if err != nil && !strings.Contains(err.Error(), "exists") {
		e.t.Fatal(err)
	}
	return secret
}

// receiver registers a receiver client and returns a polling Receiver for
// it, running until the test ends.
func (e *env) receiver(id string, issuer string, onEvent func(jti, typ string)) *ssf.Receiver {
	e.t.Helper()
	return e.receiverWith(id, issuer, func(c *ssf.Config) { c.OnEvent = onEvent })
}

// receiverWith is receiver with mod changing the receiver's configuration.
func (e *env) receiverWith(id string, issuer string, mod func(*ssf.Config)) *ssf.Receiver {
	e.t.Helper()
	r := e.newReceiver(id, issuer, mod)
	e.run(r)
	return r
}

// newReceiver registers a receiver client and returns a Receiver for it.
func (e *env) newReceiver(id string, issuer string, mod func(*ssf.Config)) *ssf.Receiver {
	e.t.Helper()
	secret := e.client(accounts.ClientSpec{ID: id, Grants: []string{oauth.GrantClientCredentials},
		Scopes: []string{authserver.ScopeSSFManage}, Audience: []string{issuer}})
	cfg := ssf.Config{Issuer: issuer, Audience: id,
		Token: &outbound.ClientCredentials{TokenURL: issuer + "/oauth2/token", ClientID: id, ClientSecret: secret,
			Scopes: []string{authserver.ScopeSSFManage}}}
	if mod != nil {
		mod(&cfg)
	}
	r, err := ssf.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// run runs r until the test ends.
func (e *env) run(r *ssf.Receiver) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	e.t.Cleanup(func() { cancel(); <-done })
}

// pushEndpoint is a receiver's push endpoint on loopback, which a test can
// take down.
type pushEndpoint struct {
	srv *httptest.Server

	mu      sync.Mutex
	handler http.Handler
	down    bool
}

func newPushEndpoint(t testing.TB) *pushEndpoint {
	p := &pushEndpoint{}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		h, down := p.handler, p.down
		p.mu.Unlock()
		if down || h == nil {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *pushEndpoint) setDown(down bool) {
	p.mu.Lock()
	p.down = down
	p.mu.Unlock()
}

// pushReceiver is receiverWith for a receiver that takes its SETs by push,
// at an endpoint of its own.
func (e *env) pushReceiver(id string, mod func(*ssf.Config)) (*ssf.Receiver, *pushEndpoint) {
	e.t.Helper()
	p := newPushEndpoint(e.t)
	r := e.newReceiver(id, e.issuer, func(c *ssf.Config) {
		c.PushURL = p.srv.URL + "/ssf/push"
		if mod != nil {
			mod(c)
		}
	})
	p.mu.Lock()
	p.handler = r.PushHandler()
	p.mu.Unlock()
	e.run(r)
	return r, p
}

// form posts a form with Basic client authentication and decodes the JSON
// answer.
func (e *env) form(path, id, secret string, v url.Values) (int, map[string]any) {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.issuer+path, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var out map[string]any
	json.Unmarshal(data, &out)
	return resp.StatusCode, out
}

func openSQLite(t testing.TB) store.Store {
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "g.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(time.Millisecond)
	}
	return time.Since(start)
}

// TestReceiverExactlyOnce: a receiver that loses its transmitter — an
// outage, then a restart that forgets every stream — gets every event
// exactly once.
func TestReceiverExactlyOnce(t *testing.T) {
	e := newEnv(t, openSQLite(t), keyring.Generate())
	var mu sync.Mutex
	seen := map[string]int{}
	r := e.receiver("rcv", e.issuer, func(jti, typ string) {
		event, _, _ := strings.Cut(jti, ".") // the event ID, whatever the stream
		mu.Lock()
		seen[event]++
		mu.Unlock()
	})
	total := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, c := range seen {
			n += c
		}
		return n
	}
	appendN := func(n int) {
		for i := 0; i < n; i++ {
			// Straight into the store, as another process would: the
			// server learns of it by polling the SQLite file.
			e.store.AppendEvent(t.Context(), store.Event{Type: secevent.TokenRevoked, TokenID: rand.Text(),
				Subject: "u", CreatedAt: time.Now().UTC()})
		}
	}
	appendN(5)
	waitFor(t, 10*time.Second, "first 5 events", func() bool { return total() >= 5 })
	e.setDown(true)
	appendN(5)
	time.Sleep(300 * time.Millisecond)
	e.setDown(false)
	waitFor(t, 15*time.Second, "5 events after the outage", func() bool { return total() >= 10 })
	e.start() // a new server: no streams, no cursors
	appendN(5)
	waitFor(t, 15*time.Second, "5 events after the restart", func() bool { return total() >= 15 })
	time.Sleep(200 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 15 {
		t.Errorf("got %d distinct events, want 15", len(seen))
	}
	for jti, n := range seen {
		if n != 1 {
			t.Errorf("event %s applied %d times, want once", jti, n)
		}
	}
	if r.Denylist().Len() != 15 {
		t.Errorf("denylist holds %d entries, want 15", r.Denylist().Len())
	}
}

// TestLogoutRejectedEverywhere: revoking a session at the authorization
// server makes the gateway and a resource.Verifier refuse its still
// unexpired access token within a second, whether the receiver polls or
// takes pushes.
func TestLogoutRejectedEverywhere(t *testing.T) {
	for _, delivery := range []string{"poll", "push"} {
		t.Run(delivery, func(t *testing.T) { testLogoutRejectedEverywhere(t, delivery) })
	}
}

func testLogoutRejectedEverywhere(t *testing.T, delivery string) {
	e := newEnv(t, openSQLite(t), keyring.Generate())
	if _, err := e.accts.AddUser(t.Context(), "alice", "alice-password", []string{"user"}); err != nil {
		t.Fatal(err)
	}
	secret := e.client(accounts.ClientSpec{ID: "web", Grants: []string{oauth.GrantPassword, oauth.GrantRefreshToken}})
	var rcv *ssf.Receiver
	if delivery == "push" {
		rcv, _ = e.pushReceiver("orders", nil)
	} else {
		rcv = e.receiver("orders", e.issuer, nil)
	}
	v, err := resource.NewVerifier(resource.Config{Issuer: e.issuer, Audience: []string{"api"}, Revocations: rcv})
	if err != nil {
		t.Fatal(err)
	}
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }))
	t.Cleanup(upstream.Close)
	gw, err := gateway.New(gateway.Config{Issuer: e.issuer, Audience: []string{"api"},
		Routes: []gateway.Route{{Prefix: "/", Upstream: upstream.URL}}, Revocations: rcv})
	if err != nil {
		t.Fatal(err)
	}
	status, tok := e.form("/oauth2/token", "web", secret, url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"alice-password"}})
	if status != 200 {
		t.Fatalf("login: %d %v", status, tok)
	}
	access := tok["access_token"].(string)
	viaGateway := func() int {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/x", nil)
		req.Header.Set("Authorization", "Bearer "+access)
		gw.ServeHTTP(rec, req)
		return rec.Code
	}
	if _, err := v.Verify(t.Context(), access); err != nil {
		t.Fatalf("before logout: %v", err)
	}
	if code := viaGateway(); code != 204 {
		t.Fatalf("gateway before logout: got %d, want 204", code)
	}
	time.Sleep(200 * time.Millisecond) // the receiver's long poll is waiting
	start := time.Now()
	if status, body := e.form("/oauth2/revoke", "web", secret, url.Values{"token": {tok["refresh_token"].(string)}}); status != 200 {
		t.Fatalf("logout: %d %v", status, body)
	}
	took := waitFor(t, time.Second, "verifier rejects", func() bool {
		_, err := v.Verify(t.Context(), access) // a cache hit: the denylist still applies
		return err != nil
	})
	if _, err := v.Verify(t.Context(), access); !errorsIsRevoked(err) {
		t.Errorf("verifier: got %v, want ErrRevoked", err)
	}
	if code := viaGateway(); code != http.StatusUnauthorized {
		t.Errorf("gateway after logout: got %d, want 401", code)
	}
	t.Logf("revoked at the verifier %v after the logout request began (%v incl. request)", took, time.Since(start))
}

// TestKeyRevokedEverywhere: revoking a signing key at the authorization
// server makes a resource.Verifier with the receiver's Revocations refuse
// a token that key signed within a second, cached or not, while a token
// signed by the key that took over still passes.
func TestKeyRevokedEverywhere(t *testing.T) {
	e := newEnv(t, openSQLite(t), keyring.Generate())
	srv := e.start() // a handle on the server, for its admin operations
	secret := e.client(accounts.ClientSpec{ID: "svc", Grants: []string{oauth.GrantClientCredentials}})
	rcv := e.receiver("orders", e.issuer, nil)
	v, err := resource.NewVerifier(resource.Config{Issuer: e.issuer, Audience: []string{"api"}, Revocations: rcv})
	if err != nil {
		t.Fatal(err)
	}
	token := func() string {
		t.Helper()
		status, tok := e.form("/oauth2/token", "svc", secret, url.Values{"grant_type": {oauth.GrantClientCredentials}})
		if status != 200 {
			t.Fatalf("token: %d %v", status, tok)
		}
		return tok["access_token"].(string)
	}
	old := token()
	// Rotate first; the verifier fetches the JWKS, which lists both keys.
	if _, err := srv.RotateKey(t.Context(), ""); err != nil {
		t.Fatal(err)
	}
	p, err := v.Verify(t.Context(), old)
	if err != nil || p.KeyID == "" {
		t.Fatalf("before the revocation: got %+v, %v, want a principal with a KeyID", p, err)
	}
	oldKid := p.KeyID
	time.Sleep(200 * time.Millisecond) // the receiver's long poll is waiting
	if _, err := srv.RevokeKey(t.Context(), oldKid); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	took := waitFor(t, time.Second, "verifier refuses the revoked key's token", func() bool {
		_, err := v.Verify(t.Context(), old) // a cache hit: the denylist still applies
		return err != nil
	})
	if _, err := v.Verify(t.Context(), old); !errorsIsRevoked(err) {
		t.Errorf("revoked key's token: got %v, want ErrRevoked", err)
	}
	fresh := token()
	p, err = v.Verify(t.Context(), fresh)
	if err != nil || p.KeyID == oldKid {
		t.Errorf("token signed after the revocation: got %+v, %v, want it to pass, signed by another key", p, err)
	}
	t.Logf("revoked key refused %v after the revocation", took)
}

// TestPostgresReplicaWakes: two authorization servers on one database; the
// receiver follows server B; a revocation through server A reaches it at
// once, by LISTEN/NOTIFY, not at the end of B's 25s long poll.
func TestPostgresReplicaWakes(t *testing.T) {
	dsn := os.Getenv("GATEHOUSE_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("GATEHOUSE_TEST_POSTGRES not set")
	}
	dsn = storetest.PostgresSchema(t, dsn)
	kr := keyring.Generate()
	openPG := func() store.Store {
		st, err := postgres.Open(t.Context(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	a := newEnv(t, openPG(), kr)
	b := newEnv(t, openPG(), kr)
	secret := a.client(accounts.ClientSpec{ID: "svc", Grants: []string{oauth.GrantClientCredentials}, Audience: []string{"api"}})
	got := make(chan time.Time, 10)
	b.receiver("rcv", b.issuer, func(string, string) { got <- time.Now() })
	_, tok := a.form("/oauth2/token", "svc", secret, url.Values{"grant_type": {"client_credentials"}})
	time.Sleep(500 * time.Millisecond) // B's long poll is waiting
	start := time.Now()
	if status, body := a.form("/oauth2/revoke", "svc", secret, url.Values{"token": {tok["access_token"].(string)}}); status != 200 {
		t.Fatalf("revoke at A: %d %v", status, body)
	}
	select {
	case at := <-got:
		t.Logf("receiver on B applied the event %v after the revocation at A began", at.Sub(start))
		if at.Sub(start) > 5*time.Second {
			t.Errorf("took %v: B's long poll was not woken", at.Sub(start))
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the receiver on B never got the event written through A")
	}
}

func errorsIsRevoked(err error) bool { return errors.Is(err, resource.ErrRevoked) }
