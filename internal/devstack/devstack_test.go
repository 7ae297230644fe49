package devstack

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/adminapi"
	"github.com/gatehouse-dev/gatehouse/internal/password"
)

func startStack(t *testing.T) *Stack {
	t.Helper()
	s, err := Start(t.Context(), Options{
		DataDir: t.TempDir(), GatewayAddr: "127.0.0.1:0", AuthAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0",
		OrdersAddr: "127.0.0.1:0", ConsumersAddr: "127.0.0.1:0",
		PasswordParams: password.Params{Memory: 64, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16},
		Logger:         slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestDevStackAdminAPI(t *testing.T) {
	s := startStack(t)
	file, err := os.ReadFile(s.AdminTokenFile)
	if err != nil || strings.TrimSpace(string(file)) != s.AdminToken || len(s.AdminToken) < 43 {
		t.Fatalf("admin token file: got %q, %v, want the stack's 256-bit token", file, err)
	}
	if fi, err := os.Stat(s.AdminTokenFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin token file mode: got %v, %v, want 0600", fi.Mode(), err)
	}
	admin := &adminapi.Remote{URL: s.AdminURL, Token: s.AdminToken}
	users, err := admin.ListUsers(t.Context())
	if err != nil || len(users) != 3 {
		t.Fatalf("admin users: got %+v, %v, want the 3 demo users", users, err)
	}
	gw, err := admin.GetClient(t.Context(), GatewayClientID)
	if err != nil || !gw.TrustedProxy {
		t.Fatalf("gateway client: got %+v, %v, want a trusted proxy", gw, err)
	}
	if _, err := (&adminapi.Remote{URL: s.AdminURL, Token: "wrong"}).ListUsers(t.Context()); !errors.Is(err, adminapi.ErrUnauthorized) {
		t.Fatalf("wrong token: got %v, want ErrUnauthorized", err)
	}
	resp, err := http.Get(s.AdminURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "gatehouse_authserver_") {
		t.Fatalf("/metrics: got %d, want the authorization server's metrics", resp.StatusCode)
	}
	if resp, err := http.Get(s.IssuerURL + "/v1/users"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("admin path on the public listener: got %v, %v, want 404", resp.Status, err)
	}
}

// A failed Basic login through the gateway is throttled under the address
// the gateway forwards: the gateway's client is a trusted proxy, whose own
// address is never throttled, so an address key exists only if the gateway
// sent the end user's.
func TestDevStackGatewayForwardsTheEndUserAddress(t *testing.T) {
	s := startStack(t)
	alice := s.Seed.Users[0]
	req, _ := http.NewRequest(http.MethodGet, s.GatewayURL+"/api/orders", nil)
	req.SetBasicAuth(alice.Username, "wrong-password")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong password: got %d, want 401", resp.StatusCode)
	}
	th, err := s.Store.GetThrottle(t.Context(), "addr:127.0.0.1")
	if err != nil || th.Failures != 1 {
		t.Fatalf("throttle of the forwarded end-user address: got %+v, %v, want 1 failure", th, err)
	}
	req.SetBasicAuth(alice.Username, alice.Password)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("right password: got %d, want 200", resp.StatusCode)
	}
}
