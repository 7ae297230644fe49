package devstack

import (
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/password"
	"github.com/gatehouse-dev/gatehouse/resource"
)

// TestDevStackPushRevocations: with RevocationDelivery push, the gateway's
// and both services' receivers take their events by push, and an access
// token revoked at the authorization server is refused by every part
// within a second.
func TestDevStackPushRevocations(t *testing.T) {
	seed := DemoSeed()
	s, err := Start(t.Context(), Options{
		DataDir: t.TempDir(), Seed: seed, GatewayAddr: "127.0.0.1:0", AuthAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0",
		OrdersAddr: "127.0.0.1:0", ConsumersAddr: "127.0.0.1:0", RevocationDelivery: DeliveryPush,
		PasswordParams: password.Params{Memory: 64, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16},
		Logger:         slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	if !strings.HasPrefix(s.PushURL, "http://127.0.0.1:") {
		t.Fatalf("PushURL: got %q, want a loopback endpoint", s.PushURL)
	}
	cli, alice := seedClient(t, seed, "cli"), seedUser(t, seed, "alice")
	form := func(path string, v url.Values) map[string]any {
		req, _ := http.NewRequest("POST", s.IssuerURL+path, strings.NewReader(v.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(cli.ID, cli.Secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %v", path, resp.StatusCode, out)
		}
		return out
	}
	tok := form("/oauth2/token", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {alice.Password}})
	access := tok["access_token"].(string)
	viaGateway := func() int {
		req, _ := http.NewRequest("GET", s.GatewayURL+"/api/consumers/me", nil)
		req.Header.Set("Authorization", "Bearer "+access)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := viaGateway(); code != http.StatusOK {
		t.Fatalf("before the revocation: got %d, want 200", code)
	}
	p := &resource.Principal{TokenID: jti(t, access), IssuedAt: time.Now()}
	time.Sleep(300 * time.Millisecond) // every receiver has its stream
	start := time.Now()
	form("/oauth2/revoke", url.Values{"token": {access}})
	for part, r := range s.Receivers {
		for r.Check(p) == nil {
			if time.Since(start) > time.Second {
				t.Fatalf("%s still accepts the revoked token after 1s", part)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	t.Logf("every receiver refused the token %v after the revocation began", time.Since(start))
	if code := viaGateway(); code != http.StatusUnauthorized {
		t.Errorf("after the revocation: gateway answered %d, want 401", code)
	}
}

func seedClient(t *testing.T, seed *config.Seed, id string) config.SeedClient {
	for _, c := range seed.Clients {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("no seed client %s", id)
	return config.SeedClient{}
}

func seedUser(t *testing.T, seed *config.Seed, name string) config.SeedUser {
	for _, u := range seed.Users {
		if u.Username == name {
			return u
		}
	}
	t.Fatalf("no seed user %s", name)
	return config.SeedUser{}
}

// jti reads the jti of a JWT without verifying it.
func jti(t *testing.T, raw string) string {
	parts := strings.Split(raw, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || len(parts) != 3 {
		t.Fatalf("not a JWT: %q", raw)
	}
	var c struct {
		ID string `json:"jti"`
	}
	json.Unmarshal(payload, &c)
	return c.ID
}
