package e2e

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-dev/gatehouse/authserver"
	"github.com/gatehouse-dev/gatehouse/demo"
	"github.com/gatehouse-dev/gatehouse/gateway"
	"github.com/gatehouse-dev/gatehouse/internal/accounts"
	"github.com/gatehouse-dev/gatehouse/internal/keyring"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/internal/store/postgres"
	"github.com/gatehouse-dev/gatehouse/outbound"
	"github.com/gatehouse-dev/gatehouse/resource"
	"github.com/gatehouse-dev/gatehouse/ssf"
)

// scaleIssuer is the one issuer of both authorization servers, as behind a
// load balancer. No name is ever resolved: each part's HTTP client dials a
// chosen server's loopback address for it (pinnedClient), which is how a
// part is tied to one replica.
const scaleIssuer = "http://as.gatehouse.test"

// scaleOut is two authorization servers, two gateways and the orders
// service, started in this process as separate servers: each has its own
// PostgreSQL connection pool, listener and HTTP clients; they share only
// the database (one fresh schema) and talk only over HTTP on loopback.
// Gateway i and its receiver use authorization server i; orders' verifier
// and receiver use server 2.
type scaleOut struct {
	as       [2]string // the servers' loopback addresses
	gateway  [2]string // the gateways' URLs
	orders   string
	accounts *accounts.Manager
	secrets  map[string]string // client secrets by client ID
	password map[string]string // by username
	client   *http.Client
}

func startScaleOut(t *testing.T, dsn string) *scaleOut {
	t.Helper()
	kr := keyring.Generate()
	so := &scaleOut{secrets: map[string]string{}, password: map[string]string{}, client: &http.Client{Timeout: 10 * time.Second}}
	stores := [2]*postgres.Store{openPostgres(t, dsn), openPostgres(t, dsn)}
	so.seed(t, stores[0], kr)
	for i := range so.as {
		so.as[i] = startAuthServer(t, stores[i], kr)
	}
	ordersRcv := so.receiver(t, "orders-ssf", so.as[1])
	v, err := resource.NewVerifier(resource.Config{Issuer: scaleIssuer, Audience: []string{scaleAudience},
		HTTPClient: pinnedClient(so.as[1]), Revocations: ordersRcv})
	if err != nil {
		t.Fatal(err)
	}
	orders := httptest.NewServer(demo.NewOrdersWith(demo.OrdersConfig{Verifier: v}))
	t.Cleanup(orders.Close)
	so.orders = orders.URL
	for i := range so.gateway {
		gw, err := gateway.New(gateway.Config{Issuer: scaleIssuer, Audience: []string{scaleAudience},
			ClientID: "gateway", ClientSecret: so.secrets["gateway"], HTTPClient: pinnedClient(so.as[i]),
			Routes:      []gateway.Route{{Prefix: "/api/orders", Upstream: so.orders, StripPrefix: "/api"}},
			Session:     gateway.SessionConfig{Enabled: true},
			Revocations: so.receiver(t, "gateway"+string('1'+byte(i))+"-ssf", so.as[i]),
			Logger:      slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(gw)
		t.Cleanup(srv.Close)
		so.gateway[i] = srv.URL
	}
	return so
}

// scaleAudience is the API behind the gateways.
const scaleAudience = "api"

// seed registers the users, the gateways' client, a "web" client for
// direct password and refresh grants, and the receivers' clients.
func (so *scaleOut) seed(t *testing.T, st *postgres.Store, kr *keyring.Keyring) {
	t.Helper()
	so.accounts = &accounts.Manager{Store: st, Secrets: kr.Hasher(keyring.PurposeClientSecret), Params: cheap}
	ctx := t.Context()
	for _, u := range []string{"alice", "mallory"} {
		so.password[u] = keyring.RandomToken(12)
		if _, err := so.accounts.AddUser(ctx, u, so.password[u], []string{"consumer"}); err != nil {
			t.Fatal(err)
		}
	}
	clients := []accounts.ClientSpec{
		{ID: "gateway", Grants: []string{oauth.GrantPassword, oauth.GrantRefreshToken}, TrustedProxy: true},
		{ID: "web", Grants: []string{oauth.GrantPassword, oauth.GrantRefreshToken}},
	}
	for _, id := range []string{"gateway1-ssf", "gateway2-ssf", "orders-ssf"} {
		clients = append(clients, accounts.ClientSpec{ID: id, Grants: []string{oauth.GrantClientCredentials},
			Scopes: []string{authserver.ScopeSSFManage}, Audience: []string{scaleIssuer}})
	}
	for _, c := range clients {
		_, secret, err := so.accounts.AddClient(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		so.secrets[c.ID] = secret
	}
}

// openPostgres opens a store with its own connection pool.
func openPostgres(t *testing.T, dsn string) *postgres.Store {
	t.Helper()
	st, err := postgres.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// startAuthServer serves an authorization server on its own loopback
// listener, runs its background work (LISTEN included) until the test
// ends, and returns its address.
func startAuthServer(t *testing.T, st *postgres.Store, kr *keyring.Keyring) string {
	t.Helper()
	as, err := authserver.New(t.Context(), authserver.Config{Issuer: scaleIssuer, Store: st, Keyring: kr,
		Audience: []string{scaleAudience}, PasswordParams: cheap, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: as}
	go srv.Serve(ln)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { as.Run(ctx); close(done) }()
	t.Cleanup(func() { srv.Close(); cancel(); <-done })
	return ln.Addr().String()
}

// pinnedClient sends every request, whatever its host, to addr on
// loopback: the issuer's name is never resolved.
func pinnedClient(addr string) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		}}}
}

// receiver follows the stream of the authorization server at addr with
// the client id until the test ends.
func (so *scaleOut) receiver(t *testing.T, id, addr string) *ssf.Receiver {
	t.Helper()
	c := pinnedClient(addr)
	r, err := ssf.New(ssf.Config{Issuer: scaleIssuer, Audience: id, HTTPClient: c,
		Token: &outbound.ClientCredentials{TokenURL: scaleIssuer + "/oauth2/token", ClientID: id,
			ClientSecret: so.secrets[id], Scopes: []string{authserver.ScopeSSFManage}, HTTPClient: c}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

// grant posts a token request for the "web" client to authorization
// server i and returns the status and the JSON answer.
func (so *scaleOut) grant(t *testing.T, i int, form url.Values) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+so.as[i]+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("web", so.secrets["web"])
	resp, err := so.client.Do(req)
	if err != nil {
		t.Error(err)
		return 0, nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out map[string]any
	json.Unmarshal(body, &out)
	return resp.StatusCode, out
}

// get sends GET url with the header and returns the status.
func (so *scaleOut) get(t *testing.T, url string, header http.Header) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header = header
	resp, err := so.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestScaleOutOnPostgres runs the scale-out scenario of issue 7 with two
// authorization servers, two gateways and the orders service, in-process
// but as separate servers sharing only PostgreSQL and HTTP on loopback (see
// scaleOut). It needs GATEHOUSE_TEST_POSTGRES.
func TestScaleOutOnPostgres(t *testing.T) {
	dsn := os.Getenv("GATEHOUSE_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("GATEHOUSE_TEST_POSTGRES not set")
	}
	so := startScaleOut(t, pgSchema(t, dsn))
	t.Run("logout at gateway 1 reaches gateway 2 and orders", so.logoutEverywhere)
	t.Run("one refresh token at both servers at once", so.refreshWithoutFork)
	t.Run("failed logins count across both servers", so.throttleAcrossServers)
}

// logoutEverywhere: a browser session made at gateway 1 works at gateway 2;
// after logout at gateway 1 (RFC 7009 at server 1) gateway 2 and orders,
// which follow server 2, refuse its access token within a second.
func (so *scaleOut) logoutEverywhere(t *testing.T) {
	browser := http.Header{"Accept": {"application/json"}, "Sec-Fetch-Site": {"same-origin"}}
	body := `{"username":"alice","password":"` + so.password["alice"] + `"}`
	req, _ := http.NewRequest(http.MethodPost, so.gateway[0]+"/login", strings.NewReader(body))
	req.Header = browser.Clone()
	req.Header.Set("Content-Type", "application/json")
	resp, err := so.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	access, refresh := setCookie(resp.Header, "__Host-gh_at"), setCookie(resp.Header, "__Host-gh_rt")
	if resp.StatusCode != http.StatusNoContent || access == "" || refresh == "" {
		t.Fatalf("login at gateway 1: got %d with cookies %q, want 204 and both session cookies", resp.StatusCode, resp.Header.Values("Set-Cookie"))
	}
	withAccess := func() http.Header {
		h := browser.Clone()
		h.Set("Cookie", "__Host-gh_at="+access)
		return h
	}
	if got := so.get(t, so.gateway[1]+"/api/orders", withAccess()); got != http.StatusOK {
		t.Fatalf("gateway 2 with gateway 1's session cookie: got %d, want 200", got)
	}
	if got := so.get(t, so.orders+"/orders", http.Header{"Authorization": {bearer(access)}}); got != http.StatusOK {
		t.Fatalf("orders with the session's access token: got %d, want 200", got)
	}

	out, _ := http.NewRequest(http.MethodPost, so.gateway[0]+"/logout", nil)
	out.Header = browser.Clone()
	out.Header.Set("Cookie", "__Host-gh_at="+access+"; __Host-gh_rt="+refresh)
	start := time.Now()
	resp, err = so.client.Do(out)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 400 {
		t.Fatalf("logout at gateway 1: got %d", resp.StatusCode)
	}
	var atGateway, atOrders time.Duration
	for atGateway == 0 || atOrders == 0 {
		if atGateway == 0 && so.get(t, so.gateway[1]+"/api/orders", withAccess()) == http.StatusUnauthorized {
			atGateway = time.Since(start)
		}
		if atOrders == 0 && so.get(t, so.orders+"/orders", http.Header{"Authorization": {bearer(access)}}) == http.StatusUnauthorized {
			atOrders = time.Since(start)
		}
		if time.Since(start) > 5*propagationBound {
			t.Fatalf("after %v: refused at gateway 2 after %v, at orders after %v (0: not yet)", time.Since(start), atGateway, atOrders)
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Logf("logout at gateway 1 → refused at gateway 2 after %v, at orders after %v", atGateway, atOrders)
	if atGateway > propagationBound || atOrders > propagationBound {
		t.Errorf("took %v at gateway 2 and %v at orders, want at most %v", atGateway, atOrders, propagationBound)
	}
}

// refreshWithoutFork sends one refresh token to both servers at once,
// several times each: every success must carry the same successor (the
// grace window may hand it out more than once), and that successor must
// go on working — the family was not forked nor revoked.
func (so *scaleOut) refreshWithoutFork(t *testing.T) {
	status, tok := so.grant(t, 0, url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {so.password["alice"]}})
	if status != http.StatusOK {
		t.Fatalf("password grant: got %d %v", status, tok)
	}
	refresh, _ := tok["refresh_token"].(string)
	const perServer = 5
	var mu sync.Mutex
	successors := map[string]int{}
	var wg sync.WaitGroup
	for n := range 2 * perServer {
		wg.Go(func() {
			status, out := so.grant(t, n%2, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}})
			if status != http.StatusOK {
				return
			}
			mu.Lock()
			successors[out["refresh_token"].(string)]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(successors) != 1 {
		t.Fatalf("got %d distinct successors from %d concurrent refreshes at two servers, want 1 (no fork)", len(successors), 2*perServer)
	}
	for next, n := range successors {
		t.Logf("%d of %d concurrent refreshes succeeded, all with the same successor", n, 2*perServer)
		for i := range 2 {
			status, out := so.grant(t, i, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {next}})
			if status != http.StatusOK {
				t.Fatalf("refresh with the successor at server %d: got %d %v, want 200", i+1, status, out)
			}
			next, _ = out["refresh_token"].(string)
		}
	}
}

// throttleAcrossServers: failures at server 1 and server 2 add up, so the
// fifth (the default LoginThrottle.Failures) locks the username at both: a
// right password is then refused at either server.
func (so *scaleOut) throttleAcrossServers(t *testing.T) {
	for n := range 5 {
		status, out := so.grant(t, n%2, url.Values{"grant_type": {"password"}, "username": {"mallory"}, "password": {"wrong"}})
		if status != http.StatusBadRequest || out["error"] != oauth.ErrInvalidGrant {
			t.Fatalf("failure %d: got %d %v, want 400 invalid_grant", n+1, status, out)
		}
	}
	for i := range 2 {
		status, out := so.grant(t, i, url.Values{"grant_type": {"password"}, "username": {"mallory"}, "password": {so.password["mallory"]}})
		if status == http.StatusOK {
			t.Errorf("right password at server %d after 3+2 failures at the two servers: got 200, want the lock to hold", i+1)
		} else {
			t.Logf("server %d after 3+2 failures: %d %v", i+1, status, out["error"])
		}
	}
}

// pgSchema creates a schema for t, dropped when t ends, and returns dsn
// with its search_path set to it.
func pgSchema(t *testing.T, dsn string) string {
	t.Helper()
	schema := "gh_e2e_" + strings.ToLower(rand.Text())
	exec := func(sql string) {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatalf("connect to PostgreSQL: %v", err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec("CREATE SCHEMA " + schema)
	t.Cleanup(func() { exec("DROP SCHEMA " + schema + " CASCADE") })
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
