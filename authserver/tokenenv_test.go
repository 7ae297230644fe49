package authserver_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/gatehouse-dev/gatehouse/authserver"
	"github.com/gatehouse-dev/gatehouse/internal/accounts"
	"github.com/gatehouse-dev/gatehouse/internal/jose"
	"github.com/gatehouse-dev/gatehouse/internal/keyring"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/postgres"
	"github.com/gatehouse-dev/gatehouse/internal/store/sqlite"
	"github.com/gatehouse-dev/gatehouse/internal/store/storetest"
)

// forEachStore runs test on a fresh SQLite store, and on a fresh PostgreSQL
// schema when GATEHOUSE_TEST_POSTGRES names a database.
func forEachStore(t *testing.T, test func(t *testing.T, st store.Store)) {
	t.Run("sqlite", func(t *testing.T) { test(t, openSQLite(t)) })
	t.Run("postgres", func(t *testing.T) {
		dsn := os.Getenv("GATEHOUSE_TEST_POSTGRES")
		if dsn == "" {
			t.Skip("GATEHOUSE_TEST_POSTGRES is not set")
		}
		st, err := postgres.Open(t.Context(), storetest.PostgresSchema(t, dsn))
		if err != nil {
			t.Fatalf("open postgres: got error %v, want nil", err)
		}
		t.Cleanup(func() { st.Close() })
		test(t, st)
	})
}

// clock is a settable clock for Config.Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// tokenEnv is an authorization server on httptest over a real store, with
// helpers to register users and clients and call its endpoints.
type tokenEnv struct {
	t       testing.TB
	URL     string
	Handler http.Handler // the server, for calls without the network
	Store   store.Store
	Clock   *clock
	Keyring *keyring.Keyring
	m       *accounts.Manager
	secrets map[string]string
	users   map[string]store.User
}

// newTokenEnv starts a server on st; adjust may change its Config.
func newTokenEnv(t testing.TB, st store.Store, adjust func(*authserver.Config)) *tokenEnv {
	t.Helper()
	var h http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	e := &tokenEnv{t: t, URL: srv.URL, Store: st, Keyring: keyring.Generate(),
		Clock: &clock{now: time.Now().UTC().Truncate(time.Second)}, secrets: map[string]string{}, users: map[string]store.User{}}
	cfg := authserver.Config{Issuer: srv.URL, Store: st, Keyring: e.Keyring, Audience: []string{"api"},
		PasswordParams: cheap, Now: e.Clock.Now, Logger: slog.New(slog.DiscardHandler)}
	if adjust != nil {
		adjust(&cfg)
	}
	as, err := authserver.New(t.Context(), cfg)
	if err != nil {
		t.Fatalf("authserver.New: got error %v, want nil", err)
	}
	h, e.Handler = as, as
	e.m = &accounts.Manager{Store: st, Secrets: e.Keyring.Hasher(keyring.PurposeClientSecret), Params: cheap, Now: e.Clock.Now}
	return e
}

// client registers a confidential client.
func (e *tokenEnv) client(spec accounts.ClientSpec) {
	e.t.Helper()
	_, secret, err := e.m.AddClient(e.t.Context(), spec)
	if err != nil {
		e.t.Fatalf("AddClient(%s): got error %v, want nil", spec.ID, err)
	}
	e.secrets[spec.ID] = secret
}

// user adds a user whose password is its name and "-password".
func (e *tokenEnv) user(name string, roles ...string) store.User {
	e.t.Helper()
	u, err := e.m.AddUser(e.t.Context(), name, name+"-password", roles)
	if err != nil {
		e.t.Fatalf("AddUser(%s): got error %v, want nil", name, err)
	}
	e.users[name] = u
	return u
}

// oauth2Config is golang.org/x/oauth2's view of a registered client.
func (e *tokenEnv) oauth2Config(clientID string, scopes ...string) *oauth2.Config {
	return &oauth2.Config{ClientID: clientID, ClientSecret: e.secrets[clientID], Scopes: scopes,
		Endpoint: oauth2.Endpoint{TokenURL: e.URL + "/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader}}
}

// login makes a password grant with golang.org/x/oauth2.
func (e *tokenEnv) login(clientID, username string, scopes ...string) *oauth2.Token {
	e.t.Helper()
	tok, err := e.oauth2Config(clientID, scopes...).PasswordCredentialsToken(e.t.Context(), username, username+"-password")
	if err != nil {
		e.t.Fatalf("password grant for %s at %s: got error %v, want a token", username, clientID, err)
	}
	return tok
}

// clientToken makes a client_credentials grant with golang.org/x/oauth2.
func (e *tokenEnv) clientToken(clientID string, scopes ...string) *oauth2.Token {
	e.t.Helper()
	cc := clientcredentials.Config{ClientID: clientID, ClientSecret: e.secrets[clientID], Scopes: scopes,
		TokenURL: e.URL + "/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader}
	tok, err := cc.Token(e.t.Context())
	if err != nil {
		e.t.Fatalf("client_credentials for %s: got error %v, want a token", clientID, err)
	}
	return tok
}

// response is an HTTP response with its JSON body decoded.
type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (r response) str(key string) string {
	s, _ := r.body[key].(string)
	return s
}

// post sends form to path below the issuer with the client's Basic
// credentials ("" sends none).
func (e *tokenEnv) post(path, clientID string, form url.Values) response {
	e.t.Helper()
	req, err := http.NewRequestWithContext(e.t.Context(), http.MethodPost, e.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if clientID != "" {
		req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(e.secrets[clientID]))
	}
	return e.do(req)
}

func (e *tokenEnv) do(req *http.Request) response {
	e.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: got error %v, want a response", req.Method, req.URL.Path, err)
	}
	r, err := decode(resp)
	if err != nil {
		e.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	return r
}

// decode reads and closes resp's body, which must be empty or JSON.
func decode(resp *http.Response) (response, error) {
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	r := response{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if err != nil {
		return r, err
	}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			return r, fmt.Errorf("got body %q, want JSON", raw)
		}
	}
	return r, nil
}

// exchange makes a token-exchange grant; extra adds or overrides parameters.
func (e *tokenEnv) exchange(clientID, subject string, extra url.Values) response {
	e.t.Helper()
	form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token": {subject}, "subject_token_type": {authserver.TokenTypeAccessToken}}
	for k, v := range extra {
		form[k] = v
	}
	return e.post("/oauth2/token", clientID, form)
}

func (e *tokenEnv) introspect(clientID, token, hint string) response {
	e.t.Helper()
	form := url.Values{"token": {token}}
	if hint != "" {
		form.Set("token_type_hint", hint)
	}
	return e.post("/oauth2/introspect", clientID, form)
}

func (e *tokenEnv) revoke(clientID, token, hint string) response {
	e.t.Helper()
	form := url.Values{"token": {token}}
	if hint != "" {
		form.Set("token_type_hint", hint)
	}
	r := e.post("/oauth2/revoke", clientID, form)
	return r
}

// active introspects token as clientID and reports "active".
func (e *tokenEnv) active(clientID, token string) bool {
	e.t.Helper()
	r := e.introspect(clientID, token, "")
	if r.status != http.StatusOK {
		e.t.Fatalf("introspect: got status %d (%s), want 200", r.status, r.raw)
	}
	return r.body["active"] == true
}

// refresh makes a refresh_token grant and returns the response.
func (e *tokenEnv) refresh(clientID, rt string) response {
	e.t.Helper()
	return e.post("/oauth2/token", clientID, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
}

// events returns every event in the store's log.
func (e *tokenEnv) events() []store.Event {
	e.t.Helper()
	evs, err := e.Store.ListEvents(e.t.Context(), 0, 1000)
	if err != nil {
		e.t.Fatalf("ListEvents: got error %v, want nil", err)
	}
	return evs
}

// verify checks raw is an access token signed by the server, for audience.
func (e *tokenEnv) verify(raw string, audience ...string) *jose.Claims {
	e.t.Helper()
	req, _ := http.NewRequestWithContext(e.t.Context(), http.MethodGet, e.URL+"/oauth2/jwks", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	doc, _ := io.ReadAll(resp.Body)
	keys, err := jose.ParseKeySet(doc)
	if err != nil {
		e.t.Fatalf("parse JWKS: got error %v, want nil", err)
	}
	c, err := jose.Verify(e.t.Context(), raw, keys, jose.Expect{Issuer: e.URL, Audience: audience,
		Types: []string{jose.TypeAccessToken}, Now: e.Clock.Now()})
	if err != nil {
		e.t.Fatalf("verify access token for %v: got error %v, want nil", audience, err)
	}
	return c
}

// openSQLite opens a fresh SQLite store, closed when t ends.
func openSQLite(t testing.TB) store.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "gatehouse.db"))
	if err != nil {
		t.Fatalf("open sqlite: got error %v, want nil", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// postForm returns a POST of values to u, without client authentication.
func postForm(t testing.TB, u string, values url.Values) *http.Request {
	t.Helper()
	r, err := http.NewRequestWithContext(t.Context(), http.MethodPost, u, strings.NewReader(values.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}

func get(t *testing.T, u string) *http.Request {
	t.Helper()
	r, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// equalJSON compares a decoded JSON value with a wanted one.
func equalJSON(got, want any) bool { return reflect.DeepEqual(got, want) }
