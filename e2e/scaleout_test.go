package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/gatehouse-dev/gatehouse/internal/keyring"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/internal/store/storetest"
	"github.com/gatehouse-dev/gatehouse/pki"
)

// The scale-out scenario of issue 7, with every part a gatehouse process
// of its own, started from a config file as an operator would start it:
//
//	gatehouse authserver ×2 ── one PostgreSQL schema, one issuer, one master key
//	gatehouse gateway    ×2 ── gateway i follows authorization server i
//	gatehouse demo consumers   follows authorization server 1
//	gatehouse demo orders      follows authorization server 2; asks consumers over mTLS
//
// Both authorization servers have the issuer scaleIssuer, a name that is
// never resolved: each other process reaches "its" server through
// HTTP_PROXY=http://<that server's address>, which Go's HTTP clients honour
// for every non-loopback URL (as.gatehouse.test) and never for the loopback
// services. That stands in for the load balancer of a real deployment and
// makes the replica each part talks to certain, so that a revocation made at
// server 1 must cross to server 2 through PostgreSQL (LISTEN/NOTIFY) to
// reach gateway 2 and orders. The configs the test writes are the template
// in docs/examples/scale-out.
const scaleIssuer = "http://as.gatehouse.test"

// scaleAudience is the API behind the gateways.
const scaleAudience = "api"

// scaleTrustDomain is the SPIFFE trust domain of the test's CA.
const scaleTrustDomain = "gatehouse.internal"

// scaleOut is the running processes and what the test needs to drive them.
type scaleOut struct {
	dir       string    // config files, secrets, the CA and the master key
	as        [2]string // the authorization servers' loopback addresses
	gateway   [2]string // the gateways' URLs
	orders    string    // https URL
	consumers string    // https URL
	echo      string    // a plain upstream that does not verify tokens
	secrets   map[string]string
	password  map[string]string
	client    *http.Client // plain HTTP, for the gateways and the servers
	asGateway *http.Client // mutual TLS with the gateway's certificate, for the services
}

// TestScaleOutOnPostgres runs the scale-out scenario of issue 7 with two
// authorization servers, two gateways and the demo services orders and
// consumers, each a separate gatehouse process sharing only PostgreSQL and
// HTTP on loopback (see scaleIssuer). It needs GATEHOUSE_TEST_POSTGRES.
func TestScaleOutOnPostgres(t *testing.T) {
	dsn := os.Getenv("GATEHOUSE_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("GATEHOUSE_TEST_POSTGRES not set: the scale-out test runs two authorization servers on PostgreSQL")
	}
	so := startScaleOut(t, storetest.PostgresSchema(t, dsn))
	t.Run("logout at gateway 1 reaches every verifier", so.logoutEverywhere)
	t.Run("one refresh token at both servers at once", so.refreshWithoutFork)
	t.Run("failed logins count across both servers", so.throttleAcrossServers) // last: it locks 127.0.0.1
}

// startScaleOut writes the files and starts the processes in dependency
// order: the CA and the gateway's certificate, authorization server 1
// (which applies the seed and creates the signing key), server 2,
// consumers, orders, then both gateways. It returns once every receiver
// follows its stream.
func startScaleOut(t *testing.T, dsn string) *scaleOut {
	t.Helper()
	so := &scaleOut{dir: t.TempDir(), secrets: map[string]string{}, password: map[string]string{},
		client: &http.Client{Timeout: 30 * time.Second}}
	gatehouseBinary(t)
	start := time.Now()
	runGatehouse(t, "ca", "init", "--data", so.dir, "--trust-domain", scaleTrustDomain)
	runGatehouse(t, "ca", "issue", "--data", so.dir, "--name", "gateway", "--out", so.path("gateway"))
	so.writeSeed(t)
	for i := range so.as {
		p := startProcess(t, fmt.Sprintf("authserver %d", i+1), nil, "authserver", "--config", so.authServerFile(t, i, dsn))
		so.as[i] = p.addr(t, "authorization server")
	}
	p := startProcess(t, "consumers", so.via(0), "demo", "consumers", "--config", so.consumersFile(t))
	so.consumers = "https://" + p.addr(t, "consumers")
	p = startProcess(t, "orders", so.via(1), "demo", "orders", "--config", so.ordersFile(t))
	so.orders = "https://" + p.addr(t, "orders")
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }))
	t.Cleanup(echo.Close)
	so.echo = echo.URL
	for i := range so.gateway {
		p := startProcess(t, fmt.Sprintf("gateway %d", i+1), so.via(i), "gateway", "--config", so.gatewayFile(t, i))
		so.gateway[i] = "http://" + p.addr(t, "gateway")
		so.waitReady(t, so.gateway[i]+"/readyz")
	}
	so.asGateway = so.mtlsClient(t, "gateway")
	t.Logf("6 processes started and ready in %v", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	so.waitFollowing(t)
	t.Logf("every receiver follows its stream %v later", time.Since(start).Round(time.Millisecond))
	return so
}

// via is the environment of a process that reaches the issuer through
// authorization server i.
func (so *scaleOut) via(i int) []string {
	return []string{"HTTP_PROXY=http://" + so.as[i]}
}

func (so *scaleOut) path(name string) string { return filepath.Join(so.dir, name) }

// write writes a file of the test's folder, mode 0600, and returns its path.
func (so *scaleOut) write(t *testing.T, name, body string) string {
	t.Helper()
	if err := os.WriteFile(so.path(name), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return so.path(name)
}

// secretFile writes the secret of client id to <id>.secret and returns its
// path.
func (so *scaleOut) secretFile(t *testing.T, id string) string {
	t.Helper()
	return so.write(t, id+".secret", so.secrets[id]+"\n")
}

// writeSeed writes seed.yaml: the users, the gateways' client, a "web"
// client for the test's own grants, the services' clients (token exchange
// and certificates) and every process's receiver client.
func (so *scaleOut) writeSeed(t *testing.T) {
	t.Helper()
	var b strings.Builder
	b.WriteString("users:\n")
	for _, u := range []string{"alice", "mallory"} {
		so.password[u] = keyring.RandomToken(12)
		fmt.Fprintf(&b, "  - {username: %s, password: %q, roles: [consumer]}\n", u, so.password[u])
	}
	client := func(id, spec string) {
		so.secrets[id] = keyring.RandomToken(32)
		fmt.Fprintf(&b, "  - {id: %s, secret: %q, %s}\n", id, so.secrets[id], spec)
	}
	b.WriteString("clients:\n")
	client("gateway", "grants: [password, refresh_token], trusted_proxy: true")
	client("web", "grants: [password, refresh_token]")
	client("orders", fmt.Sprintf("grants: [%q, client_credentials], exchange_audiences: [consumers], audience: [%q]",
		oauth.GrantTokenExchange, scaleIssuer))
	client("consumers", fmt.Sprintf("grants: [client_credentials], audience: [%q]", scaleIssuer))
	for _, id := range []string{"gateway1-ssf", "gateway2-ssf", "orders-ssf", "consumers-ssf"} {
		client(id, fmt.Sprintf("grants: [client_credentials], scopes: [ssf.manage], audience: [%q]", scaleIssuer))
	}
	so.write(t, "seed.yaml", b.String())
}

// authServerFile writes the file of authorization server i; server 1
// applies the seed.
func (so *scaleOut) authServerFile(t *testing.T, i int, dsn string) string {
	t.Helper()
	seed := ""
	if i == 0 {
		seed = "seed: " + so.path("seed.yaml") + "\n"
	}
	return so.write(t, fmt.Sprintf("authserver%d.yaml", i+1), fmt.Sprintf(`issuer: %s
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
store: %q
master_key_file: %s
ca_dir: %s
audience: [%s]
login_throttle:
  lock: 1m   # the test checks the lock from two servers: longer than a loaded machine takes
%s`, scaleIssuer, "postgres:"+dsn, so.path("master.key"), so.path("ca"), scaleAudience, seed))
}

// serviceFile is what both services' files share: certificates from the
// issuance endpoint with the service's own client, and a receiver.
func (so *scaleOut) serviceFile(t *testing.T, name string, peers ...string) string {
	t.Helper()
	ids := make([]string, len(peers))
	for i, p := range peers {
		ids[i] = spiffeid.RequireFromPath(spiffeid.RequireTrustDomainFromString(scaleTrustDomain), "/svc/"+p).String()
	}
	return fmt.Sprintf(`listen: 127.0.0.1:0
issuer: %s
audience: [%s]
mtls:
  client_id: %s
  client_secret_file: %s
  allowed_peers: [%s]
revocations:
  client_id: %s-ssf
  client_secret_file: %s
  max_token_lifetime: 5m
`, scaleIssuer, scaleAudience, name, so.secretFile(t, name), strings.Join(ids, ", "), name, so.secretFile(t, name+"-ssf"))
}

func (so *scaleOut) consumersFile(t *testing.T) string {
	t.Helper()
	return so.write(t, "consumers.yaml", so.serviceFile(t, "consumers", "gateway", "orders")+"service_audience: consumers\n")
}

func (so *scaleOut) ordersFile(t *testing.T) string {
	t.Helper()
	return so.write(t, "orders.yaml", so.serviceFile(t, "orders", "gateway")+fmt.Sprintf(`consumers:
  url: %s
  spiffe_id: spiffe://%s/svc/consumers
  token_exchange:
    client_id: orders
    client_secret_file: %s
    audience: consumers
`, so.consumers, scaleTrustDomain, so.secretFile(t, "orders")))
}

// gatewayFile writes the file of gateway i: browser sessions, routes to
// orders and consumers over mTLS, and a route to the test's echo upstream,
// which does not verify tokens, so that a 401 there is the gateway's own.
func (so *scaleOut) gatewayFile(t *testing.T, i int) string {
	t.Helper()
	gw := so.path("gateway")
	return so.write(t, fmt.Sprintf("gateway%d.yaml", i+1), fmt.Sprintf(`listen: 127.0.0.1:0
issuer: %[1]s
audience: [%[2]s]
client_id: gateway
client_secret_file: %[3]s
mtls:
  cert_file: %[4]s/cert.pem
  key_file: %[4]s/key.pem
  bundle_file: %[4]s/bundle.pem
routes:
  - prefix: /api/orders
    upstream: %[5]s
    strip_prefix: /api
    spiffe_id: spiffe://%[6]s/svc/orders
  - prefix: /api/consumers
    upstream: %[7]s
    strip_prefix: /api
    spiffe_id: spiffe://%[6]s/svc/consumers
  - prefix: /api/echo
    upstream: %[8]s
session:
  enabled: true
revocations:
  client_id: gateway%[9]d-ssf
  client_secret_file: %[10]s
  max_token_lifetime: 5m
`, scaleIssuer, scaleAudience, so.secretFile(t, "gateway"), gw, so.orders, scaleTrustDomain, so.consumers, so.echo,
		i+1, so.secretFile(t, fmt.Sprintf("gateway%d-ssf", i+1))))
}

// mtlsClient is a client with the certificate files of name (from
// `gatehouse ca issue`), admitting orders and consumers as servers.
func (so *scaleOut) mtlsClient(t *testing.T, name string) *http.Client {
	t.Helper()
	dir := so.path(name)
	src, err := pki.LoadSource(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), filepath.Join(dir, "bundle.pem"))
	if err != nil {
		t.Fatal(err)
	}
	td := spiffeid.RequireTrustDomainFromString(scaleTrustDomain)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = pki.ClientConfig(src, src, pki.AuthorizeOneOf(pki.MustServiceID(td, "orders"), pki.MustServiceID(td, "consumers")))
	return &http.Client{Timeout: 30 * time.Second, Transport: tr}
}

// waitReady polls url until it answers 200.
func (so *scaleOut) waitReady(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(readyTimeout)
	for {
		resp, err := so.client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			err = fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not ready after %v: %v", url, readyTimeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// receiver names a part that refuses revoked tokens, and how the test asks
// it whether it refuses one: a 401 from it is its own decision.
type receiver struct {
	name   string
	status func(t *testing.T, access string) int
}

// receivers are the four parts that follow a revocation stream.
func (so *scaleOut) receivers() []receiver {
	gateway := func(i int) func(*testing.T, string) int {
		return func(t *testing.T, access string) int {
			return so.get(t, so.client, so.gateway[i]+"/api/echo", http.Header{"Authorization": {bearer(access)}})
		}
	}
	service := func(u string) func(*testing.T, string) int {
		return func(t *testing.T, access string) int {
			return so.get(t, so.asGateway, u, http.Header{"Authorization": {bearer(access)}})
		}
	}
	return []receiver{
		{"gateway 1 (follows server 1)", gateway(0)},
		{"gateway 2 (follows server 2)", gateway(1)},
		{"orders (follows server 2)", service(so.orders + "/orders")},
		{"consumers (follows server 1)", service(so.consumers + "/consumers/me")},
	}
}

// waitFollowing makes sure every receiver follows its stream before the
// test measures anything: it revokes a throwaway session at server 1 and
// waits, without a bound of its own, until every part refuses its token.
func (so *scaleOut) waitFollowing(t *testing.T) {
	t.Helper()
	status, tok := so.grant(t, 0, url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {so.password["alice"]}})
	if status != http.StatusOK {
		t.Fatalf("password grant at server 1: got %d %v, want 200", status, tok)
	}
	access, _ := tok["access_token"].(string)
	refresh, _ := tok["refresh_token"].(string)
	for _, r := range so.receivers() {
		if got := r.status(t, access); got != http.StatusOK {
			t.Fatalf("%s with a fresh token: got %d, want 200", r.name, got)
		}
	}
	so.revoke(t, 0, refresh)
	deadline := time.Now().Add(readyTimeout)
	for _, r := range so.receivers() {
		for r.status(t, access) != http.StatusUnauthorized {
			if time.Now().After(deadline) {
				t.Fatalf("%s still accepts a token revoked %v ago: its receiver does not follow the stream", r.name, readyTimeout)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// grant posts a token request for the "web" client to authorization
// server i and returns the status and the JSON answer.
func (so *scaleOut) grant(t *testing.T, i int, form url.Values) (int, map[string]any) {
	t.Helper()
	return so.post(t, "http://"+so.as[i]+"/oauth2/token", form)
}

// revoke revokes token at authorization server i (RFC 7009) as the "web"
// client.
func (so *scaleOut) revoke(t *testing.T, i int, token string) {
	t.Helper()
	if status, out := so.post(t, "http://"+so.as[i]+"/oauth2/revoke", url.Values{"token": {token}}); status != http.StatusOK {
		t.Fatalf("revoke at server %d: got %d %v, want 200", i+1, status, out)
	}
}

// post posts form to u with the "web" client's credentials.
func (so *scaleOut) post(t *testing.T, u string, form url.Values) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
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

// get sends GET u with the header through c and returns the status.
func (so *scaleOut) get(t *testing.T, c *http.Client, u string, header http.Header) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header = header
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// logoutEverywhere: a browser session made at gateway 1 works at gateway 2,
// down to orders and, through orders, consumers; after logout at gateway 1
// (RFC 7009 at server 1) every part refuses its access token within a
// second — gateway 2 and orders, which follow server 2, included.
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
	withAccess := browser.Clone()
	withAccess.Set("Cookie", "__Host-gh_at="+access)
	if got := so.get(t, so.client, so.gateway[1]+"/api/orders", withAccess); got != http.StatusOK {
		t.Fatalf("gateway 2 with gateway 1's session cookie: got %d, want 200", got)
	}
	so.orderThroughGateway(t, 1, access)

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
	t.Logf("logout at gateway 1 answered after %v", time.Since(start).Round(100*time.Microsecond))
	took := so.refusedEverywhere(t, start, access)
	if got := so.get(t, so.client, so.gateway[1]+"/api/orders", withAccess); got != http.StatusUnauthorized {
		t.Errorf("gateway 2 with the logged-out session cookie: got %d, want 401", got)
	}
	for _, r := range so.receivers() {
		if took[r.name] > propagationBound {
			t.Errorf("%s refused the token %v after logout began, want at most %v", r.name, took[r.name], propagationBound)
		}
	}
}

// orderThroughGateway creates an order through gateway i with the access
// token: orders asks consumers about the caller (token exchange at server
// 2, mutual TLS orders → consumers) before it answers 201.
func (so *scaleOut) orderThroughGateway(t *testing.T, i int, access string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, so.gateway[i]+"/api/orders", strings.NewReader(`{"item":"pizza","quantity":2}`))
	req.Header.Set("Authorization", bearer(access))
	req.Header.Set("Content-Type", "application/json")
	resp, err := so.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create an order through gateway %d: got %d %s, want 201", i+1, resp.StatusCode, body)
	}
}

// refusedEverywhere polls every receiver with access until each refuses it,
// and returns (and logs) how long after start each one did. It fails t if
// one still accepts it after 5 × propagationBound.
func (so *scaleOut) refusedEverywhere(t *testing.T, start time.Time, access string) map[string]time.Duration {
	t.Helper()
	took := map[string]time.Duration{}
	rs := so.receivers()
	for len(took) < len(rs) {
		for _, r := range rs {
			if _, done := took[r.name]; !done && r.status(t, access) == http.StatusUnauthorized {
				took[r.name] = time.Since(start)
			}
		}
		if elapsed := time.Since(start); len(took) < len(rs) && elapsed > 5*propagationBound {
			t.Fatalf("after %v only these refuse the token: %v", elapsed, took)
		}
		time.Sleep(2 * time.Millisecond)
	}
	for _, r := range rs {
		t.Logf("logout at gateway 1 → refused at %-30s after %v", r.name, took[r.name].Round(100*time.Microsecond))
	}
	return took
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
// fifth (the default login_throttle failures) locks the username at both:
// a right password is then refused at either server.
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
