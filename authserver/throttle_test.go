package authserver

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/accounts"
	"github.com/gatehouse-dev/gatehouse/internal/keyring"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
)

func TestLockFor(t *testing.T) {
	th := LoginThrottle{}
	th.setDefaults()
	tests := []struct {
		failures int
		want     time.Duration
	}{
		{1, 0}, {4, 0}, {5, time.Second}, {6, 2 * time.Second}, {7, 4 * time.Second},
		{14, 512 * time.Second}, {15, 15 * time.Minute}, {40, 15 * time.Minute}, {1 << 30, 15 * time.Minute},
	}
	for _, tt := range tests {
		if got := th.lockFor(tt.failures); got != tt.want {
			t.Errorf("lockFor(%d): got %v, want %v", tt.failures, got, tt.want)
		}
	}
}

// throttleFixture has a password client "cli" and a trusted proxy "gateway".
type throttleFixture struct {
	*fixture
	cliSecret, gatewaySecret string
}

func newThrottleFixture(t testing.TB, o fixtureOptions) *throttleFixture {
	f := &throttleFixture{fixture: newFixture(t, o)}
	grants := []string{oauth.GrantPassword, oauth.GrantRefreshToken}
	f.cliSecret = f.addClient(accounts.ClientSpec{ID: "cli", Grants: grants})
	f.gatewaySecret = f.addClient(accounts.ClientSpec{ID: "gateway", Grants: grants, TrustedProxy: true})
	return f
}

func (f *throttleFixture) login(username, pw string, extra ...string) tokenResponse {
	f.t.Helper()
	return f.passwordGrant("cli", f.cliSecret, username, pw, extra...)
}

func (f *throttleFixture) loginVia(endUserIP, username, pw string) tokenResponse {
	f.t.Helper()
	return f.passwordGrant("gateway", f.gatewaySecret, username, pw, oauth.ParamEndUserIP, endUserIP)
}

func wantLogin(t *testing.T, what string, r tokenResponse, ok bool) {
	t.Helper()
	switch {
	case ok && r.status != 200:
		t.Fatalf("%s: got %d %v, want 200", what, r.status, r.body)
	case !ok && r.str("error") != oauth.ErrInvalidGrant:
		t.Fatalf("%s: got %d %v, want invalid_grant", what, r.status, r.body)
	}
}

func wantLocked(t *testing.T, what string, r tokenResponse) {
	t.Helper()
	if r.str("error") != oauth.ErrInvalidGrant || !strings.Contains(r.str("error_description"), "too many") {
		t.Fatalf("%s: got %d %v, want invalid_grant for a locked login", what, r.status, r.body)
	}
}

func TestWrongPasswordsLockTheUser(t *testing.T) {
	f := newThrottleFixture(t, fixtureOptions{})
	f.addUser("alice", "alice-password")
	for i := range 5 {
		wantLogin(t, "wrong password", f.login("alice", "wrong-password-"+string(rune('a'+i))), false)
	}
	wantLocked(t, "right password while locked", f.login("alice", "alice-password"))
	if !strings.Contains(f.log.String(), `"msg":"login refused: locked"`) {
		t.Errorf("got no audit line for the refused login")
	}
	f.clock.Advance(1100 * time.Millisecond)
	wantLogin(t, "right password after the lock", f.login("alice", "alice-password"), true)
	// The success forgot alice's failures, not the address's: one good
	// account must not reset an address that guesses others.
	if th, err := f.store.GetThrottle(t.Context(), "user:alice"); err != nil || th.Failures != 0 {
		t.Errorf("user:alice after a success: got %+v, %v, want no failures", th, err)
	}
	if th, err := f.store.GetThrottle(t.Context(), "addr:127.0.0.1"); err != nil || th.Failures != 5 {
		t.Errorf("addr:127.0.0.1 after a success: got %+v, %v, want 5 failures", th, err)
	}
}

func TestLockDoublesAndExpires(t *testing.T) {
	f := newThrottleFixture(t, fixtureOptions{config: func(c *Config) {
		c.LoginThrottle = LoginThrottle{Failures: 2, Lock: time.Minute, MaxLock: 3 * time.Minute, Window: time.Hour}
	}})
	f.addUser("bob", "bob-password")
	wantLogin(t, "failure 1", f.passwordGrant("cli", f.cliSecret, "bob", "x-x-x-x-x"), false)
	wantLogin(t, "failure 2 (locks 1m)", f.login("bob", "x-x-x-x-x"), false)
	wantLocked(t, "during the first lock", f.login("bob", "bob-password"))
	f.clock.Advance(61 * time.Second)
	wantLogin(t, "failure 3 (locks 2m)", f.login("bob", "x-x-x-x-x"), false)
	f.clock.Advance(119 * time.Second)
	wantLocked(t, "just before the second lock ends", f.login("bob", "bob-password"))
	f.clock.Advance(2 * time.Second)
	wantLogin(t, "after the second lock", f.login("bob", "bob-password"), true)
}

func TestUnknownUsersAreThrottledToo(t *testing.T) {
	f := newThrottleFixture(t, fixtureOptions{})
	for range 5 {
		wantLogin(t, "unknown user", f.login("ghost", "whatever-pw"), false)
	}
	wantLocked(t, "unknown user, locked", f.login("ghost", "whatever-pw"))
}

func TestAddressIsThrottledAcrossUsernames(t *testing.T) {
	f := newThrottleFixture(t, fixtureOptions{})
	f.addUser("carol", "carol-password")
	for i := range 5 {
		wantLogin(t, "guess", f.login("user"+string(rune('a'+i)), "guess-guess"), false)
	}
	wantLocked(t, "another user from the locked address", f.login("carol", "carol-password"))
}

func TestTrustedProxyAddress(t *testing.T) {
	f := newThrottleFixture(t, fixtureOptions{})
	f.addUser("dave", "dave-password")
	f.addUser("erin", "erin-password")
	// An attacker behind the gateway guesses many usernames from 192.0.2.7.
	for i := range 8 {
		wantLogin(t, "guess via the gateway", f.loginVia("192.0.2.7", "victim"+string(rune('a'+i)), "guess-guess"), false)
	}
	wantLocked(t, "forwarded attacker address", f.loginVia("192.0.2.7", "dave", "dave-password"))
	// The gateway's own address (the test's loopback) is never locked: other
	// end users through it still log in.
	wantLogin(t, "another end user via the gateway", f.loginVia("198.51.100.9", "dave", "dave-password"), true)
	wantLogin(t, "IPv6 end user via the gateway", f.loginVia("2001:db8::1", "erin", "erin-password"), true)
	for _, key := range []string{"addr:127.0.0.1", "addr:::1"} {
		if th, err := f.store.GetThrottle(t.Context(), key); err != nil || th.Failures != 0 {
			t.Errorf("throttle of the gateway's address %s: got %+v, %v, want none", key, th, err)
		}
	}
	// A malformed forwarded address is refused, not ignored.
	if r := f.loginVia("not-an-ip", "dave", "dave-password"); r.str("error") != oauth.ErrInvalidRequest {
		t.Errorf("malformed %s: got %d %v, want invalid_request", oauth.ParamEndUserIP, r.status, r.body)
	}
}

func TestIPv6EndUsersAreThrottledPerSlash64(t *testing.T) {
	f := newThrottleFixture(t, fixtureOptions{})
	f.addUser("frank", "frank-password")
	for i := range 5 {
		ip := "2001:db8:1:2::" + string(rune('a'+i)) // one /64, many addresses
		wantLogin(t, "guess", f.loginVia(ip, "victim", "guess-guess"), false)
	}
	wantLocked(t, "another address of the same /64", f.loginVia("2001:db8:1:2::ffff", "frank", "frank-password"))
	wantLogin(t, "another /64", f.loginVia("2001:db8:1:3::1", "frank", "frank-password"), true)
}

func TestUntrustedClientCannotForwardAddress(t *testing.T) {
	f := newThrottleFixture(t, fixtureOptions{})
	f.addUser("grace", "grace-password")
	// "cli" is not a trusted proxy: rotating the forwarded address does not
	// escape the lock on its real address.
	for i := range 5 {
		ip := "203.0.113." + string(rune('1'+i))
		wantLogin(t, "guess with a forged address", f.login("victim"+string(rune('a'+i)), "guess-guess", oauth.ParamEndUserIP, ip), false)
	}
	wantLocked(t, "real address locked", f.login("grace", "grace-password", oauth.ParamEndUserIP, "203.0.113.200"))
	if th, _ := f.store.GetThrottle(t.Context(), "addr:203.0.113.1"); th.Failures != 0 {
		t.Errorf("forged address was counted: %+v", th)
	}
}

func TestThrottleIsSharedByReplicas(t *testing.T) {
	for _, kind := range storeKinds() {
		t.Run(kind, func(t *testing.T) {
			st, kr, clock := openStore(t, kind), keyring.Generate(), newTestClock()
			a := newThrottleFixture(t, fixtureOptions{store: st, keyring: kr, clock: clock})
			b := &throttleFixture{fixture: newFixture(t, fixtureOptions{store: st, keyring: kr, clock: clock}),
				cliSecret: a.cliSecret, gatewaySecret: a.gatewaySecret}
			a.addUser("heidi", "heidi-password")
			for i := range 5 {
				f := a
				if i%2 == 1 {
					f = b
				}
				wantLogin(t, "guess", f.loginVia("192.0.2."+string(rune('1'+i)), "heidi", "guess-guess"), false)
			}
			wantLocked(t, "replica a", a.loginVia("198.51.100.1", "heidi", "heidi-password"))
			wantLocked(t, "replica b", b.loginVia("198.51.100.1", "heidi", "heidi-password"))
		})
	}
}

func TestLockedLoginSkipsThePasswordHash(t *testing.T) {
	f := newThrottleFixture(t, fixtureOptions{})
	for range 5 {
		f.login("ivan", "guess-guess")
	}
	before := histogramCount(t, f.fixture, "gatehouse_authserver_password_hash_duration_seconds")
	wantLocked(t, "locked", f.login("ivan", "guess-guess"))
	if after := histogramCount(t, f.fixture, "gatehouse_authserver_password_hash_duration_seconds"); after != before {
		t.Fatalf("password hashes: got %d after a locked login, want %d (none computed)", after, before)
	}
}

func TestLoginKeys(t *testing.T) {
	tests := []struct {
		name     string
		remote   string
		trusted  bool
		param    string
		wantAddr string
	}{
		{"ipv4", "192.0.2.1:5555", false, "", "addr:192.0.2.1"},
		{"ipv6 /64", "[2001:db8:a:b:c:d:e:f]:5555", false, "", "addr:2001:db8:a:b::/64"},
		{"v4-mapped", "[::ffff:192.0.2.1]:1", false, "", "addr:192.0.2.1"},
		{"untrusted ignores param", "192.0.2.1:5555", false, "198.51.100.1", "addr:192.0.2.1"},
		{"trusted uses param", "192.0.2.1:5555", true, "198.51.100.1", "addr:198.51.100.1"},
		{"trusted without param", "192.0.2.1:5555", true, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := &tokenRequest{form: url.Values{}, addr: tt.remote}
			req.client.TrustedProxy = tt.trusted
			if tt.param != "" {
				req.form.Set(oauth.ParamEndUserIP, tt.param)
			}
			k, err := loginKeysFor("alice", req)
			if err != nil || k.addr != tt.wantAddr || k.user != "user:alice" {
				t.Fatalf("got %+v, %v, want addr %q", k, err, tt.wantAddr)
			}
		})
	}
}
