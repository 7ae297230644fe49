// Package e2e tests the Access Token pattern end to end: the authorization
// server, the gateway and the demo services of internal/devstack, each on
// 127.0.0.1:0, driven by golang.org/x/oauth2 at the token endpoint and by
// plain net/http through the gateway. What reaches the services is observed
// through devstack.Options.Wrap.
package e2e

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/devstack"
	"github.com/gatehouse-dev/gatehouse/internal/keyring"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/internal/password"
)

// cheap keeps argon2id fast under -race.
var cheap = password.Params{Memory: 64, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16}

// otherAudience is the audience of the seed's "reports" client: tokens for
// another API, which the gateway must refuse.
const otherAudience = "reports-api"

// harness is a running dev stack and what its services saw.
type harness struct {
	*devstack.Stack
	dataDir  string
	services *serviceLog
	client   *http.Client
}

// serviceLog records every request that reached a demo service.
type serviceLog struct {
	mu   sync.Mutex
	reqs []serviceRequest
}

type serviceRequest struct {
	service, method, path string
	header                http.Header
}

// count returns how many requests reached service ("" for any).
func (l *serviceLog) count(service string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.reqs {
		if service == "" || r.service == service {
			n++
		}
	}
	return n
}

// last returns the newest request that reached service.
func (l *serviceLog) last(t *testing.T, service string) serviceRequest {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.reqs) - 1; i >= 0; i-- {
		if l.reqs[i].service == service {
			return l.reqs[i]
		}
	}
	t.Fatalf("no request reached %s", service)
	return serviceRequest{}
}

// start runs a dev stack for t, changed by mod if not nil. Every request
// that reaches a service is checked for what the gateway must guarantee: no
// identity header from outside, and a bearer JWT access token.
func start(t *testing.T, mod func(*devstack.Options)) *harness {
	t.Helper()
	seed := devstack.DemoSeed()
	seed.Clients = append(seed.Clients, config.SeedClient{ID: "reports", Secret: keyring.RandomToken(32),
		Grants: []string{oauth.GrantPassword}, Audience: []string{otherAudience}})
	h := &harness{dataDir: t.TempDir(), services: &serviceLog{}, client: &http.Client{Timeout: 10 * time.Second}}
	o := devstack.Options{
		DataDir: h.dataDir, Seed: seed, PasswordParams: cheap,
		GatewayAddr: "127.0.0.1:0", AuthAddr: "127.0.0.1:0", OrdersAddr: "127.0.0.1:0", ConsumersAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0",
		Logger: slog.New(slog.DiscardHandler),
		Wrap: func(name string, next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				checkForwarded(t, name, r)
				h.services.mu.Lock()
				h.services.reqs = append(h.services.reqs, serviceRequest{service: name, method: r.Method, path: r.URL.Path, header: r.Header.Clone()})
				h.services.mu.Unlock()
				next.ServeHTTP(w, r)
			})
		},
	}
	if mod != nil {
		mod(&o)
	}
	st, err := devstack.Start(t.Context(), o)
	if err != nil {
		t.Fatalf("devstack.Start: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("close stack: %v", err)
		}
	})
	h.Stack = st
	return h
}

// spoofable are the identity headers a client might forge, compared the way
// CGI-style servers read them (underscores as hyphens).
func spoofable(name string) bool {
	n := http.CanonicalHeaderKey(strings.ReplaceAll(name, "_", "-"))
	return slices.Contains([]string{"X-User", "X-Forwarded-User", "X-Remote-User", "Remote-User", "X-Roles"}, n) ||
		strings.HasPrefix(n, "X-Gatehouse-")
}

// checkForwarded fails t if a request reaching a service carries a
// client-supplied identity header or anything but a bearer JWT.
func checkForwarded(t *testing.T, service string, r *http.Request) {
	for name, v := range r.Header {
		if spoofable(name) {
			t.Errorf("%s got %s: %q, want it stripped by the gateway", service, name, v)
		}
	}
	auth := r.Header.Get("Authorization")
	token, ok := strings.CutPrefix(auth, "Bearer ")
	parts := strings.Split(token, ".")
	if !ok || len(parts) != 3 {
		t.Errorf("%s got Authorization %q, want a bearer JWT", service, auth)
		return
	}
	var header struct{ Typ, Alg string }
	raw, _ := base64.RawURLEncoding.DecodeString(parts[0])
	if json.Unmarshal(raw, &header) != nil || header.Typ != "at+jwt" || header.Alg != "ES256" {
		t.Errorf("%s got a token with header %s, want typ at+jwt, alg ES256", service, raw)
	}
}

func (h *harness) user(t *testing.T, name string) config.SeedUser {
	t.Helper()
	i := slices.IndexFunc(h.Seed.Users, func(u config.SeedUser) bool { return u.Username == name })
	if i < 0 {
		t.Fatalf("no seed user %q", name)
	}
	return h.Seed.Users[i]
}

// oauthConfig is an x/oauth2 client for a seed client.
func (h *harness) oauthConfig(t *testing.T, clientID string) *oauth2.Config {
	t.Helper()
	i := slices.IndexFunc(h.Seed.Clients, func(c config.SeedClient) bool { return c.ID == clientID })
	if i < 0 {
		t.Fatalf("no seed client %q", clientID)
	}
	return &oauth2.Config{ClientID: clientID, ClientSecret: h.Seed.Clients[i].Secret,
		Endpoint: oauth2.Endpoint{TokenURL: h.TokenURL, AuthStyle: oauth2.AuthStyleInHeader}}
}

// login makes a password grant for user with the seed client clientID.
func (h *harness) login(t *testing.T, clientID, user string) *oauth2.Token {
	t.Helper()
	tok, err := h.oauthConfig(t, clientID).PasswordCredentialsToken(t.Context(), user, h.user(t, user).Password)
	if err != nil {
		t.Fatalf("password grant for %s with %s: %v", user, clientID, err)
	}
	return tok
}

func bearer(token string) string { return "Bearer " + token }

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func (h *harness) basic(t *testing.T, user string) string {
	return basic(user, h.user(t, user).Password)
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// call sends a request through the gateway.
func (h *harness) call(t *testing.T, method, path, auth, body string, header http.Header) response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, h.GatewayURL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

func decode[T any](t *testing.T, r response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("got body %q, want JSON: %v", r.body, err)
	}
	return v
}

type consumer struct {
	Sub      string   `json:"sub"`
	Username string   `json:"username"`
	Roles    []string `json:"roles"`
}

type order struct {
	ID    string `json:"id"`
	Owner string `json:"owner"`
	Item  string `json:"item"`
}

func TestBasicCredentials(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	alice := h.user(t, "alice")
	tests := []struct {
		name       string
		auth       string
		wantStatus int
	}{
		{name: "right_password", auth: basic("alice", alice.Password), wantStatus: http.StatusOK},
		{name: "right_password_cached", auth: basic("alice", alice.Password), wantStatus: http.StatusOK},
		{name: "no_credentials", wantStatus: http.StatusUnauthorized},
		{name: "wrong_password", auth: basic("alice", alice.Password+"x"), wantStatus: http.StatusUnauthorized},
		{name: "another_users_password", auth: basic("alice", h.user(t, "bob").Password), wantStatus: http.StatusUnauthorized},
		{name: "unknown_user", auth: basic("mallory", alice.Password), wantStatus: http.StatusUnauthorized},
		{name: "empty_password", auth: basic("alice", ""), wantStatus: http.StatusUnauthorized},
		{name: "malformed", auth: "Basic ###", wantStatus: http.StatusUnauthorized},
		{name: "client_credentials_as_user", auth: basic("cli", h.Seed.Clients[0].Secret), wantStatus: http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := h.services.count("consumers")
			r := h.call(t, http.MethodGet, "/api/consumers/me", tt.auth, "", nil)
			if r.status != tt.wantStatus {
				t.Fatalf("got %d %s, want %d", r.status, r.body, tt.wantStatus)
			}
			if tt.wantStatus == http.StatusOK {
				if c := decode[consumer](t, r); c.Username != "alice" || !slices.Equal(c.Roles, []string{"consumer"}) {
					t.Errorf("got %+v, want alice with role consumer", c)
				}
				return
			}
			if got := h.services.count("consumers") - before; got != 0 {
				t.Errorf("got %d requests at consumers, want 0", got)
			}
			challenges := strings.Join(r.header.Values("WWW-Authenticate"), "; ")
			if !strings.Contains(challenges, "Bearer ") || !strings.Contains(challenges, "Basic ") {
				t.Errorf("got WWW-Authenticate %q, want Bearer and Basic challenges", challenges)
			}
		})
	}
}

func TestOrderOwnership(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	alice := bearer(h.login(t, "cli", "alice").AccessToken)
	carol := bearer(h.login(t, "cli", "carol").AccessToken)

	r := h.call(t, http.MethodPost, "/api/orders", alice, `{"item":"book","quantity":2}`, nil)
	if r.status != http.StatusCreated {
		t.Fatalf("alice creates an order: got %d %s, want 201", r.status, r.body)
	}
	created := decode[order](t, r)
	if created.ID == "" || created.Item != "book" {
		t.Fatalf("got %+v, want an order with an id", created)
	}
	me := decode[consumer](t, h.call(t, http.MethodGet, "/api/consumers/me", alice, "", nil))
	if created.Owner != me.Sub {
		t.Errorf("got owner %q, want alice's subject %q", created.Owner, me.Sub)
	}

	tests := []struct {
		name, auth string
		wantStatus int
	}{
		{name: "bob_basic", auth: h.basic(t, "bob"), wantStatus: http.StatusForbidden},
		{name: "bob_bearer", auth: bearer(h.login(t, "cli", "bob").AccessToken), wantStatus: http.StatusForbidden},
		{name: "carol_admin", auth: carol, wantStatus: http.StatusOK},
		{name: "alice_owner", auth: alice, wantStatus: http.StatusOK},
		{name: "alice_owner_basic", auth: h.basic(t, "alice"), wantStatus: http.StatusOK},
		{name: "anonymous", wantStatus: http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.call(t, http.MethodGet, "/api/orders/"+created.ID, tt.auth, "", nil)
			if r.status != tt.wantStatus {
				t.Fatalf("got %d %s, want %d", r.status, r.body, tt.wantStatus)
			}
			if tt.wantStatus == http.StatusOK {
				if got := decode[order](t, r); got.ID != created.ID {
					t.Errorf("got order %+v, want %s", got, created.ID)
				}
			}
		})
	}
	t.Run("bob_lists_only_his", func(t *testing.T) {
		list := decode[[]order](t, h.call(t, http.MethodGet, "/api/orders", h.basic(t, "bob"), "", nil))
		if slices.ContainsFunc(list, func(o order) bool { return o.ID == created.ID }) {
			t.Errorf("got %+v, want no order of alice's", list)
		}
	})
}

func TestAdminRoute(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	alice := bearer(h.login(t, "cli", "alice").AccessToken)
	var ids []string
	for _, auth := range []string{alice, h.basic(t, "bob")} {
		r := h.call(t, http.MethodPost, "/api/orders", auth, `{"item":"pen","quantity":1}`, nil)
		if r.status != http.StatusCreated {
			t.Fatalf("create order: got %d %s, want 201", r.status, r.body)
		}
		ids = append(ids, decode[order](t, r).ID)
	}
	tests := []struct {
		name, auth string
		wantStatus int
	}{
		{name: "alice_bearer", auth: alice, wantStatus: http.StatusForbidden},
		{name: "alice_basic", auth: h.basic(t, "alice"), wantStatus: http.StatusForbidden},
		{name: "bob_basic", auth: h.basic(t, "bob"), wantStatus: http.StatusForbidden},
		{name: "anonymous", wantStatus: http.StatusUnauthorized},
		{name: "carol_bearer", auth: bearer(h.login(t, "cli", "carol").AccessToken), wantStatus: http.StatusOK},
		{name: "carol_basic", auth: h.basic(t, "carol"), wantStatus: http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := h.services.count("orders")
			r := h.call(t, http.MethodGet, "/api/admin/orders", tt.auth, "", nil)
			if r.status != tt.wantStatus {
				t.Fatalf("got %d %s, want %d", r.status, r.body, tt.wantStatus)
			}
			reached := h.services.count("orders") - before
			if tt.wantStatus != http.StatusOK {
				if reached != 0 {
					t.Errorf("got %d requests at orders, want 0: the gateway must refuse", reached)
				}
				if tt.wantStatus == http.StatusForbidden {
					if e := decode[oauth.Error](t, r); e.Code != oauth.ErrAccessDenied {
						t.Errorf("got error %q, want %q", e.Code, oauth.ErrAccessDenied)
					}
				}
				return
			}
			if reached != 1 {
				t.Errorf("got %d requests at orders, want 1", reached)
			}
			if p := h.services.last(t, "orders").path; p != "/orders" {
				t.Errorf("orders got path %q, want %q", p, "/orders")
			}
			list := decode[[]order](t, r)
			for _, id := range ids {
				if !slices.ContainsFunc(list, func(o order) bool { return o.ID == id }) {
					t.Errorf("got %+v, want every order, including %s", list, id)
				}
			}
		})
	}
}

// forged are identity headers a client sends to pass as carol, the admin.
var forged = http.Header{
	"X-User":            {"carol"},
	"X-Forwarded-User":  {"carol"},
	"X-Remote-User":     {"carol"},
	"X-Gatehouse-Roles": {"admin"},
	"X-Gatehouse-User":  {"carol"},
	"X-Roles":           {"admin"},
	"X_user":            {"carol"},
}

func TestForgedIdentityHeaders(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	alice := bearer(h.login(t, "cli", "alice").AccessToken)
	tests := []struct {
		name, path, auth string
		wantStatus       int
	}{
		{name: "admin_route_bearer", path: "/api/admin/orders", auth: alice, wantStatus: http.StatusForbidden},
		{name: "admin_route_basic", path: "/api/admin/orders", auth: h.basic(t, "alice"), wantStatus: http.StatusForbidden},
		{name: "admin_route_anonymous", path: "/api/admin/orders", wantStatus: http.StatusUnauthorized},
		{name: "me_anonymous", path: "/api/consumers/me", wantStatus: http.StatusUnauthorized},
		{name: "me_bearer", path: "/api/consumers/me", auth: alice, wantStatus: http.StatusOK},
		{name: "me_basic", path: "/api/consumers/me", auth: h.basic(t, "alice"), wantStatus: http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := h.services.count("")
			r := h.call(t, http.MethodGet, tt.path, tt.auth, "", forged)
			if r.status != tt.wantStatus {
				t.Fatalf("got %d %s, want %d", r.status, r.body, tt.wantStatus)
			}
			reached := h.services.count("") - before
			if tt.wantStatus != http.StatusOK {
				if reached != 0 {
					t.Errorf("got %d requests at the services, want 0", reached)
				}
				return
			}
			if c := decode[consumer](t, r); c.Username != "alice" || !slices.Equal(c.Roles, []string{"consumer"}) {
				t.Errorf("got %+v, want alice with role consumer only", c)
			}
			seen := h.services.last(t, "consumers").header
			for name := range seen {
				if spoofable(name) {
					t.Errorf("consumers got %s, want it stripped", name)
				}
			}
			if tt.auth == alice && seen.Get("Authorization") != alice {
				t.Errorf("consumers got Authorization %q, want alice's token", seen.Get("Authorization"))
			}
		})
	}
}
