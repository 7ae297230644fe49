package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
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
	"github.com/gatehouse-dev/gatehouse/internal/store/sqlite"
	"github.com/gatehouse-dev/gatehouse/outbound"
	"github.com/gatehouse-dev/gatehouse/resource"
	"github.com/gatehouse-dev/gatehouse/ssf"
)

// TestBasicRetryDuringRevocation is the race the Basic retry exists for,
// with the real parts: an authorization server, a service that verifies
// tokens with a Shared Signals receiver of its own, and a gateway that
// learns of revocations later than the service (here: never). A Basic
// client whose cached token is revoked gets its answer without seeing the
// service's 401 — the gateway makes a new grant and retries — and once the
// password has changed, gets the gateway's 401 invalid_grant.
func TestBasicRetryDuringRevocation(t *testing.T) {
	ctx := t.Context()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "gh.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	kr := keyring.Generate()
	cheap := password.Params{Memory: 64, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16}
	var asHandler http.Handler = http.NotFoundHandler()
	asSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { asHandler.ServeHTTP(w, r) }))
	t.Cleanup(asSrv.Close)
	issuer := asSrv.URL
	as, err := authserver.New(ctx, authserver.Config{Issuer: issuer, Store: st, Keyring: kr, Audience: []string{"api"},
		PasswordParams: cheap, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	asHandler = as
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	t.Cleanup(func() { stop(); wg.Wait() })
	wg.Go(func() { as.Run(runCtx) })

	m := &accounts.Manager{Store: st, Secrets: kr.Hasher(keyring.PurposeClientSecret), Params: cheap}
	if _, err := m.AddUser(ctx, "carol", "carol-password-1", []string{"consumer"}); err != nil {
		t.Fatal(err)
	}
	_, gwSecret, err := m.AddClient(ctx, accounts.ClientSpec{ID: "gateway", Grants: []string{oauth.GrantPassword}})
	if err != nil {
		t.Fatal(err)
	}
	_, rcvSecret, err := m.AddClient(ctx, accounts.ClientSpec{ID: "svc-ssf", Grants: []string{oauth.GrantClientCredentials},
		Scopes: []string{authserver.ScopeSSFManage}, Audience: []string{issuer}})
	if err != nil {
		t.Fatal(err)
	}

	// The service: verifies every token, and refuses the revoked ones.
	rcv, err := ssf.New(ssf.Config{Issuer: issuer, Audience: "svc-ssf", Token: &outbound.ClientCredentials{
		TokenURL: issuer + "/oauth2/token", ClientID: "svc-ssf", ClientSecret: rcvSecret, Scopes: []string{authserver.ScopeSSFManage}}})
	if err != nil {
		t.Fatal(err)
	}
	wg.Go(func() { rcv.Run(runCtx) })
	v, err := resource.NewVerifier(resource.Config{Issuer: issuer, Audience: []string{"api"}, Revocations: rcv})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []int       // the service's answers
	var lastToken string // the token of the last request at the service
	svc := httptest.NewServer(resource.Middleware(v)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := resource.FromContext(r.Context())
		json.NewEncoder(w).Encode(map[string]string{"jti": p.TokenID})
	})))
	t.Cleanup(svc.Close)
	counting := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		svc.Config.Handler.ServeHTTP(rec, r)
		mu.Lock()
		seen = append(seen, rec.Code)
		lastToken, _ = resource.BearerToken(r)
		mu.Unlock()
		for k, vv := range rec.Header() {
			w.Header()[k] = vv
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	})
	upstream := httptest.NewServer(counting)
	t.Cleanup(upstream.Close)

	gw, err := gateway.New(gateway.Config{Issuer: issuer, Audience: []string{"api"}, ClientID: "gateway", ClientSecret: gwSecret,
		Routes: []gateway.Route{{Prefix: "/api", Upstream: upstream.URL}}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	call := func(pw string) (int, string) {
		req := httptest.NewRequest(http.MethodGet, "/api/orders", nil)
		req.SetBasicAuth("carol", pw)
		w := httptest.NewRecorder()
		gw.ServeHTTP(w, req)
		var body struct {
			JTI   string `json:"jti"`
			Error string `json:"error"`
		}
		json.Unmarshal(w.Body.Bytes(), &body)
		return w.Code, body.JTI + body.Error
	}
	answers := func() []int {
		mu.Lock()
		defer mu.Unlock()
		out := seen
		seen = nil
		return out
	}

	code, first := call("carol-password-1")
	if again, jti := call("carol-password-1"); code != 200 || again != 200 || jti != first {
		t.Fatalf("before the revocation: got %d, %d and tokens %q, %q, want 200 twice with the cached token", code, again, first, jti)
	}
	answers()

	// Revoke the cached token (RFC 7009, as its client); wait until the
	// service refuses it.
	mu.Lock()
	cached := lastToken
	mu.Unlock()
	req, _ := http.NewRequest("POST", issuer+"/oauth2/revoke", strings.NewReader(url.Values{"token": {cached}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("gateway", gwSecret)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %v, %v", resp, err)
	}
	refused := func(token string) func() bool {
		return func() bool { _, err := v.Verify(ctx, token); return errors.Is(err, resource.ErrRevoked) }
	}
	waitFor(t, "the service refuses the revoked token", refused(cached))

	code, jti := call("carol-password-1")
	if code != 200 || jti == first {
		t.Errorf("after the revocation: got %d with token %q, want 200 with a new token", code, jti)
	}
	if got := answers(); len(got) != 2 || got[0] != 401 || got[1] != 200 {
		t.Errorf("the service answered %v, want 401 to the revoked token, then 200 to the retry", got)
	}
	if again, next := call("carol-password-1"); again != 200 || next != jti {
		t.Errorf("then: got %d with token %q, want 200 with the new token, cached", again, next)
	}

	// The password changes: the event revokes carol's tokens at the
	// service, and the retry's grant with the old password fails.
	mu.Lock()
	cached = lastToken
	mu.Unlock()
	answers()
	admin, err := authserver.NewAdmin(authserver.AdminConfig{Store: st, Keyring: kr, PasswordParams: cheap, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.SetPassword(ctx, "carol", "carol-password-2"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the service refuses carol's tokens", refused(cached))
	if code, errCode := call("carol-password-1"); code != http.StatusUnauthorized || errCode != oauth.ErrInvalidGrant {
		t.Errorf("old password after the change: got %d %q, want 401 invalid_grant", code, errCode)
	}
	if got := answers(); len(got) != 1 || got[0] != 401 {
		t.Errorf("the service answered %v, want one 401: no retry without a token", got)
	}
	// Receivers compare whole seconds; a token the server mints in the
	// second of the change is dated the next one, so the new password works
	// at once (waitFor only tolerates a grant that raced the change).
	waitFor(t, "the new password works", func() bool { code, _ := call("carol-password-2"); return code == 200 })
}

// waitFor polls cond every 5ms for up to 10s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
