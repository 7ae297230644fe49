package authserver

import (
	"bytes"
	"context"
	"encoding/json"
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

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse-dev/gatehouse/internal/accounts"
	"github.com/gatehouse-dev/gatehouse/internal/adminapi"
	"github.com/gatehouse-dev/gatehouse/internal/keyring"
	"github.com/gatehouse-dev/gatehouse/internal/password"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/postgres"
	"github.com/gatehouse-dev/gatehouse/internal/store/sqlite"
	"github.com/gatehouse-dev/gatehouse/internal/store/storetest"
)

// cheapParams make password hashes fast in tests.
var cheapParams = password.Params{Memory: 64, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16}

// testClock is a clock tests move by hand.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock {
	return &testClock{now: time.Date(2031, time.March, 4, 5, 6, 7, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// syncBuffer is a bytes.Buffer safe for concurrent writers (the logger).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// storeKinds lists the stores tests that depend on the database run
// against: SQLite always, PostgreSQL when GATEHOUSE_TEST_POSTGRES is set.
func storeKinds() []string {
	if os.Getenv("GATEHOUSE_TEST_POSTGRES") != "" {
		return []string{"sqlite", "postgres"}
	}
	return []string{"sqlite"}
}

// openStore opens an empty store of kind, closed when t ends.
func openStore(t testing.TB, kind string) store.Store {
	t.Helper()
	var st store.Store
	var err error
	switch kind {
	case "sqlite":
		st, err = sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "gatehouse.db"))
	case "postgres":
		st, err = postgres.Open(t.Context(), storetest.PostgresSchema(t, os.Getenv("GATEHOUSE_TEST_POSTGRES")))
	default:
		t.Fatalf("unknown store kind %q", kind)
	}
	if err != nil {
		t.Fatalf("open %s store: %v", kind, err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// fixture is an authorization server on httptest, with its admin API on a
// listener of its own, a store, a hand-moved clock and a captured log.
type fixture struct {
	t        testing.TB
	srv      *Server
	public   *httptest.Server
	adminSrv *httptest.Server
	store    store.Store
	keyring  *keyring.Keyring
	clock    *testClock
	log      *syncBuffer
	registry *prometheus.Registry
	accounts *accounts.Manager
}

const testAdminToken = "test-admin-token-0123456789abcdef"

// fixtureOptions change a fixture.
type fixtureOptions struct {
	store    store.Store      // if nil, a new SQLite store
	keyring  *keyring.Keyring // if nil, a new one
	clock    *testClock       // if nil, a new one
	registry *prometheus.Registry
	config   func(*Config)
}

func newFixture(t testing.TB, o fixtureOptions) *fixture {
	t.Helper()
	if o.store == nil {
		o.store = openStore(t, "sqlite")
	}
	if o.keyring == nil {
		o.keyring = keyring.Generate()
	}
	if o.clock == nil {
		o.clock = newTestClock()
	}
	if o.registry == nil {
		o.registry = prometheus.NewRegistry()
	}
	f := &fixture{t: t, store: o.store, keyring: o.keyring, clock: o.clock, log: &syncBuffer{}, registry: o.registry}
	var handler http.Handler = http.NotFoundHandler()
	f.public = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(f.public.Close)
	cfg := Config{
		Issuer: f.public.URL, Store: o.store, Keyring: o.keyring, Audience: []string{"api"},
		PasswordParams: cheapParams, Now: o.clock.Now, AdminToken: testAdminToken, Registerer: o.registry,
		Logger: slog.New(slog.NewJSONHandler(f.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if o.config != nil {
		o.config(&cfg)
	}
	srv, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	f.srv, handler = srv, srv
	// settle waits out a second on the test's clock, not the wall's.
	srv.sleep = func(_ context.Context, d time.Duration) error { o.clock.Advance(d); return nil }
	f.adminSrv = httptest.NewServer(srv.AdminHandler())
	t.Cleanup(f.adminSrv.Close)
	f.accounts = &accounts.Manager{Store: o.store, Secrets: o.keyring.Hasher(keyring.PurposeClientSecret),
		Params: cheapParams, Now: o.clock.Now}
	return f
}

// admin returns a client of the fixture's admin API.
func (f *fixture) admin() *adminapi.Remote {
	return &adminapi.Remote{URL: f.adminSrv.URL, Token: testAdminToken, HTTPClient: f.adminSrv.Client()}
}

func (f *fixture) addUser(username, pw string, roles ...string) store.User {
	f.t.Helper()
	u, err := f.accounts.AddUser(f.t.Context(), username, pw, roles)
	if err != nil {
		f.t.Fatalf("add user %s: %v", username, err)
	}
	return u
}

// addClient registers spec and returns its secret.
func (f *fixture) addClient(spec accounts.ClientSpec) string {
	f.t.Helper()
	_, secret, err := f.accounts.AddClient(f.t.Context(), spec)
	if err != nil {
		f.t.Fatalf("add client %s: %v", spec.ID, err)
	}
	return secret
}

// tokenResponse is what the token endpoint answered.
type tokenResponse struct {
	status int
	header http.Header
	body   map[string]any
}

func (r tokenResponse) str(key string) string {
	s, _ := r.body[key].(string)
	return s
}

// token posts form to the token endpoint, with Basic credentials when
// clientID is not empty.
func (f *fixture) token(form url.Values, clientID, secret string) tokenResponse {
	f.t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.srv.TokenURL(), strings.NewReader(form.Encode()))
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if clientID != "" {
		req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	}
	resp, err := f.public.Client().Do(req)
	if err != nil {
		f.t.Fatalf("token request: %v", err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	r := tokenResponse{status: resp.StatusCode, header: resp.Header}
	if err := json.Unmarshal(data, &r.body); err != nil {
		f.t.Fatalf("token response %d is not JSON: %q", resp.StatusCode, data)
	}
	return r
}

// passwordGrant makes a password grant as the client.
func (f *fixture) passwordGrant(clientID, secret, username, pw string, extra ...string) tokenResponse {
	f.t.Helper()
	form := url.Values{"grant_type": {"password"}, "username": {username}, "password": {pw}}
	for i := 0; i+1 < len(extra); i += 2 {
		form.Set(extra[i], extra[i+1])
	}
	return f.token(form, clientID, secret)
}

// get fetches url from srv and returns the status and body.
func get(t testing.TB, srv *httptest.Server, path string, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

// histogramCount returns the sample count of the histogram metric name.
func histogramCount(t testing.TB, f *fixture, name string) uint64 {
	t.Helper()
	families, err := f.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range families {
		if mf.GetName() == name {
			var n uint64
			for _, m := range mf.GetMetric() {
				n += m.GetHistogram().GetSampleCount()
			}
			return n
		}
	}
	return 0
}

// clientSpec is a confidential client with the grants.
func clientSpec(id string, grants ...string) accounts.ClientSpec {
	return accounts.ClientSpec{ID: id, Grants: grants}
}
