package e2e

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/adminapi"
	"github.com/gatehouse-dev/gatehouse/internal/devstack"
	"github.com/gatehouse-dev/gatehouse/pki"
)

// propagationBound is how soon a revocation must be enforced everywhere; a
// generous bound for a shared, noisy machine under -race (docs/revocation.md
// has the measured p50/p99).
const propagationBound = time.Second

// TestRevocationReachesEveryVerifier revokes sessions of the dev stack at
// the authorization server — by RFC 7009 and by the admin API — and checks
// that the still unexpired access token is refused within a second by the
// gateway (bearer path), by the orders service called directly over mTLS,
// and that the gateway's Basic-credential cache stops using it. The
// latencies are logged: from the start of the revoking request to the
// first refusal observed by polling every 2ms.
func TestRevocationReachesEveryVerifier(t *testing.T) {
	h := start(t, nil)
	orders := h.ordersClient(t)
	admin := &adminapi.Remote{URL: h.AdminURL, Token: h.AdminToken}

	t.Run("RFC 7009 revoke of the refresh token", func(t *testing.T) {
		tok := h.login(t, "cli", "alice")
		h.expectRefused(t, orders, tok.AccessToken, func() {
			h.revokeAtServer(t, "cli", tok.RefreshToken)
		})
	})
	t.Run("admin revokes the session", func(t *testing.T) {
		tok := h.login(t, "cli", "bob")
		sid, _ := claimsOf(t, bearer(tok.AccessToken))["sid"].(string)
		sessions, err := admin.ListSessions(t.Context(), "bob")
		if err != nil || !slices.ContainsFunc(sessions, func(s adminapi.Session) bool { return s.ID == sid }) {
			t.Fatalf("admin list sessions: got %+v, %v, want one with sid %q", sessions, err, sid)
		}
		h.expectRefused(t, orders, tok.AccessToken, func() {
			if err := admin.RevokeSession(t.Context(), "bob", sid); err != nil {
				t.Fatalf("admin revoke session: %v", err)
			}
		})
	})
	t.Run("admin revokes the sessions behind the Basic cache", func(t *testing.T) {
		auth := h.basic(t, "carol")
		first := h.basicToken(t, auth)
		if again := h.basicToken(t, auth); again != first {
			t.Fatalf("the second Basic call forwarded another token: the cache is not in use")
		}
		start := time.Now()
		if _, err := admin.RevokeSessions(t.Context(), "carol"); err != nil {
			t.Fatalf("admin revoke sessions: %v", err)
		}
		// The gateway must not forward the revoked cached token: it makes
		// a new password grant (the password is unchanged) and forwards
		// the new token. Each receiver applies the event on its own, so for
		// a moment orders may refuse the cached token the gateway still
		// forwards; the gateway then drops it, makes a new grant and
		// retries once (step F for Basic); the new token is dated after the
		// revocation even within its second, so orders takes it. Any 401
		// that still reached the client is counted here.
		refusedUpstream := 0
		took := waitUntil(t, "the Basic cache drops the revoked token", func() bool {
			r := h.call(t, http.MethodGet, "/api/orders", auth, "", nil)
			if r.status == http.StatusUnauthorized {
				refusedUpstream++
				return false
			}
			return r.status == http.StatusOK && h.forwarded(t) != first
		})
		t.Logf("Basic cache: a new token forwarded %v after the revocation began (%d calls got orders' 401 meanwhile)", took, refusedUpstream)
		if next := h.basicToken(t, auth); next == first {
			t.Errorf("the gateway forwards the revoked token again")
		}
		if took := time.Since(start); took > propagationBound {
			t.Errorf("took %v, want at most %v", took, propagationBound)
		}
		h.expectStatus(t, orders, first, http.StatusUnauthorized)
	})
}

// ordersClient calls the orders service directly, over mTLS, with a
// certificate for the gateway's SPIFFE ID (orders admits only the gateway).
func (h *harness) ordersClient(t *testing.T) *http.Client {
	t.Helper()
	src, err := pki.NewRotatingSource(t.Context(), h.CA.Issuer(devstack.GatewayClientID))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	want := pki.MustServiceID(h.CA.TrustDomain(), devstack.OrdersClientID)
	return &http.Client{Timeout: 10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: pki.ClientConfig(src, src, pki.AuthorizeID(want))}}
}

// status returns the status of GET /api/orders with the bearer token
// through the gateway, and of GET /orders at the orders service directly.
func (h *harness) status(t *testing.T, orders *http.Client, token string) (gateway, direct int) {
	t.Helper()
	gateway = h.call(t, http.MethodGet, "/api/orders", bearer(token), "", nil).status
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, h.OrdersURL+"/orders", nil)
	req.Header.Set("Authorization", bearer(token))
	resp, err := orders.Do(req)
	if err != nil {
		t.Fatalf("orders directly: %v", err)
	}
	resp.Body.Close()
	return gateway, resp.StatusCode
}

func (h *harness) expectStatus(t *testing.T, orders *http.Client, token string, want int) {
	t.Helper()
	if gw, direct := h.status(t, orders, token); gw != want || direct != want {
		t.Fatalf("got %d at the gateway and %d at orders, want %d at both", gw, direct, want)
	}
}

// expectRefused checks that token is accepted, runs revoke, and waits for
// the gateway and orders to refuse it, each within propagationBound.
func (h *harness) expectRefused(t *testing.T, orders *http.Client, token string, revoke func()) {
	t.Helper()
	h.expectStatus(t, orders, token, http.StatusOK)
	start := time.Now()
	revoke()
	var atGateway, atOrders time.Duration
	for atGateway == 0 || atOrders == 0 {
		gw, direct := h.status(t, orders, token)
		if gw == http.StatusUnauthorized && atGateway == 0 {
			atGateway = time.Since(start)
		}
		if direct == http.StatusUnauthorized && atOrders == 0 {
			atOrders = time.Since(start)
		}
		if time.Since(start) > 5*propagationBound {
			t.Fatalf("after %v: got %d at the gateway and %d at orders, want 401 at both", time.Since(start), gw, direct)
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Logf("refused at the gateway %v and at orders %v after the revoking request began", atGateway, atOrders)
	if atGateway > propagationBound || atOrders > propagationBound {
		t.Errorf("took %v at the gateway and %v at orders, want at most %v", atGateway, atOrders, propagationBound)
	}
}

// revokeAtServer revokes token at the authorization server (RFC 7009) with
// the seed client clientID's credentials.
func (h *harness) revokeAtServer(t *testing.T, clientID, token string) {
	t.Helper()
	c := h.oauthConfig(t, clientID)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, h.IssuerURL+"/oauth2/revoke",
		strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(c.ClientID, c.ClientSecret)
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: got %d, want 200", resp.StatusCode)
	}
}

// basicToken calls orders through the gateway with Basic credentials and
// returns the access token the gateway forwarded.
func (h *harness) basicToken(t *testing.T, auth string) string {
	t.Helper()
	if r := h.call(t, http.MethodGet, "/api/orders", auth, "", nil); r.status != http.StatusOK {
		t.Fatalf("Basic call: got %d %s, want 200", r.status, r.body)
	}
	return h.forwarded(t)
}

// forwarded returns the access token of the newest request at orders.
func (h *harness) forwarded(t *testing.T) string {
	t.Helper()
	return strings.TrimPrefix(h.services.last(t, "orders").header.Get("Authorization"), "Bearer ")
}

// waitUntil polls cond every 2ms for up to 5 propagation bounds and
// returns how long it took.
func waitUntil(t *testing.T, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > 5*propagationBound {
			t.Fatalf("%s: not within %v", what, 5*propagationBound)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return time.Since(start)
}
