package authserver_test

import (
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

	"github.com/gatehouse-dev/gatehouse/authserver"
	"github.com/gatehouse-dev/gatehouse/internal/accounts"
	"github.com/gatehouse-dev/gatehouse/internal/keyring"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/postgres"
	"github.com/gatehouse-dev/gatehouse/internal/store/sqlite"
	"github.com/gatehouse-dev/gatehouse/internal/store/storetest"
)

// cheap (declared in token_test.go) keeps argon2id fast in tests; the
// server and the seeded hashes use the same parameters, so no login
// triggers a rehash.

// Users and clients of every flowEnv.
const (
	alicePassword = "alice-password-1"
	bobPassword   = "bob-password-22"
	spaClient     = "spa"      // public, none, PKCE required
	webClient     = "web"      // confidential, client_secret_basic
	postClient    = "web-post" // confidential, client_secret_post
	cliClient     = "cli"      // confidential, password grant, no authorization_code
	bareClient    = "bare"     // confidential, authorization_code without scopes
	testAudience  = "demo-api"
)

// flowEnv is an authorization server on 127.0.0.1 with a real store, the
// users alice and bob, and a client application's redirect URI served by
// its own httptest server.
type flowEnv struct {
	t        testing.TB
	issuer   string
	callback string // the redirect URI registered for every client
	// signedOut is the post-logout redirect URI of the web and spa clients.
	signedOut string
	store     store.Store
	keyring   *keyring.Keyring
	clock     *testClock
	secrets   map[string]string // client ID → secret
	alice     store.User
	// transport reaches the server (it trusts its certificate over https).
	transport http.RoundTripper
	// handler is the server itself, for tests that call it directly.
	handler http.Handler
}

// testClock is the server's clock; tests move it forward.
type testClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// newFlowEnv starts a server on a SQLite store with an http issuer.
func newFlowEnv(t testing.TB) *flowEnv {
	t.Helper()
	return newFlowEnvOn(t, sqliteStore(t), false)
}

// newFlowEnvOn starts a server on st, with an https issuer when useTLS.
func newFlowEnvOn(t testing.TB, st store.Store, useTLS bool) *flowEnv {
	t.Helper()
	ctx := t.Context()
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "client application")
	}))
	t.Cleanup(cb.Close)
	e := &flowEnv{t: t, callback: cb.URL + "/callback", signedOut: cb.URL + "/signed-out", store: st, keyring: keyring.Generate(),
		clock: &testClock{}, secrets: map[string]string{}}

	srv := httptest.NewUnstartedServer(nil)
	e.issuer = "http://" + srv.Listener.Addr().String()
	if useTLS {
		e.issuer = "https://" + srv.Listener.Addr().String()
	}
	as, err := authserver.New(ctx, authserver.Config{
		Issuer: e.issuer, Store: st, Keyring: e.keyring, Audience: []string{testAudience},
		PasswordParams: cheap, Now: e.clock.Now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatalf("authserver.New: %v", err)
	}
	srv.Config.Handler, e.handler = as, as
	if useTLS {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	e.transport = srv.Client().Transport
	e.seed(ctx)
	return e
}

func (e *flowEnv) seed(ctx context.Context) {
	t := e.t
	m := &accounts.Manager{Store: e.store, Secrets: e.keyring.Hasher(keyring.PurposeClientSecret), Params: cheap}
	var err error
	if e.alice, err = m.AddUser(ctx, "alice", alicePassword, []string{"consumer", "admin"}); err != nil {
		t.Fatal(err)
	}
	if _, err = m.AddUser(ctx, "bob", bobPassword, []string{"consumer"}); err != nil {
		t.Fatal(err)
	}
	code := []string{oauth.GrantAuthorizationCode, oauth.GrantRefreshToken}
	oidcScopes := []string{"openid", "profile", "roles", "orders"}
	for _, spec := range []accounts.ClientSpec{
		{ID: spaClient, AuthMethod: store.AuthNone, Grants: code, Scopes: oidcScopes, RedirectURIs: []string{e.callback},
			PostLogoutRedirectURIs: []string{e.signedOut}},
		{ID: webClient, Grants: code, Scopes: oidcScopes, RedirectURIs: []string{e.callback},
			PostLogoutRedirectURIs: []string{e.signedOut}},
		{ID: postClient, AuthMethod: store.AuthClientSecretPost, Grants: code, Scopes: oidcScopes, RedirectURIs: []string{e.callback}},
		{ID: bareClient, Grants: []string{oauth.GrantAuthorizationCode}, RedirectURIs: []string{e.callback}},
		{ID: cliClient, Grants: []string{oauth.GrantPassword}, Scopes: []string{"orders", "openid"},
			RedirectURIs: []string{e.callback}, Audience: []string{e.issuer}},
	} {
		_, secret, err := m.AddClient(ctx, spec)
		if err != nil {
			t.Fatalf("add client %s: %v", spec.ID, err)
		}
		e.secrets[spec.ID] = secret
	}
}

func sqliteStore(t testing.TB) store.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "gatehouse.db"))
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// postgresStore opens a schema of its own in GATEHOUSE_TEST_POSTGRES,
// dropped when t ends, or skips t when the variable is unset.
func postgresStore(t *testing.T) store.Store {
	t.Helper()
	dsn := os.Getenv("GATEHOUSE_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("GATEHOUSE_TEST_POSTGRES is not set")
	}
	st, err := postgres.Open(t.Context(), storetest.PostgresSchema(t, dsn))
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// tokenPost posts form to the token endpoint, with Basic credentials when
// basic is not nil, and returns the status and the decoded JSON body.
func (e *flowEnv) tokenPost(form url.Values, basic *[2]string) (int, map[string]any, http.Header) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.issuer+"/oauth2/token", strings.NewReader(form.Encode()))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic != nil {
		req.SetBasicAuth(url.QueryEscape(basic[0]), url.QueryEscape(basic[1]))
	}
	return doJSON(e.t, req)
}

// doJSON sends req and decodes the JSON object it gets back.
func doJSON(t testing.TB, req *http.Request) (int, map[string]any, http.Header) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("%s %s: decode body: %v", req.Method, req.URL, err)
	}
	return resp.StatusCode, body, resp.Header
}
