package authserver_test

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/authserver"
	"github.com/gatehouse-dev/gatehouse/internal/accounts"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// refreshConcurrently presents one refresh token n times at once through
// the token endpoint and returns the responses.
func refreshConcurrently(e *tokenEnv, rt string, n int) []response {
	out := make([]response, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out[i] = e.refresh("web", rt)
		}()
	}
	close(start)
	wg.Wait()
	return out
}

// TestConcurrentRefreshNeverForks: 50 concurrent refreshes of one token get
// one successor between them (inside the grace window every retry gets the
// same one); after the window the old token revokes the family, successor
// included. Without a grace window exactly one of the 50 succeeds.
func TestConcurrentRefreshNeverForks(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		e := newTokenEnv(t, st, nil)
		e.client(accounts.ClientSpec{ID: "web", Grants: []string{"password", "refresh_token"}, Scopes: []string{"orders"}})
		e.user("alice")
		rt := e.login("web", "alice").RefreshToken
		successors := map[string]bool{}
		for _, r := range refreshConcurrently(e, rt, 50) {
			if r.status != http.StatusOK {
				t.Fatalf("got %d %s inside the grace window, want 200", r.status, r.raw)
			}
			successors[r.str("refresh_token")] = true
		}
		if len(successors) != 1 {
			t.Fatalf("got %d different successors, want 1 (no forked chain)", len(successors))
		}
		var successor string
		for s := range successors {
			successor = s
		}
		e.Clock.Advance(11 * time.Second)
		if r := e.refresh("web", rt); r.status != http.StatusBadRequest || r.str("error") != "invalid_grant" {
			t.Fatalf("old token after the grace window: got %d %s, want 400 invalid_grant", r.status, r.raw)
		}
		if r := e.refresh("web", successor); r.str("error") != "invalid_grant" {
			t.Fatalf("successor after reuse: got %d %s, want invalid_grant (family revoked)", r.status, r.raw)
		}
	})
}

func TestConcurrentRefreshWithoutGrace(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		e := newTokenEnv(t, st, func(c *authserver.Config) { c.RefreshGrace = -1 })
		e.client(accounts.ClientSpec{ID: "web", Grants: []string{"password", "refresh_token"}, Scopes: []string{"orders"}})
		e.user("alice")
		rt := e.login("web", "alice").RefreshToken
		ok, successor := 0, ""
		for _, r := range refreshConcurrently(e, rt, 50) {
			switch {
			case r.status == http.StatusOK:
				ok++
				successor = r.str("refresh_token")
			case r.str("error") != "invalid_grant":
				t.Fatalf("got %d %s, want 200 or invalid_grant", r.status, r.raw)
			}
		}
		if ok != 1 {
			t.Fatalf("got %d successful refreshes of one token, want exactly 1", ok)
		}
		if r := e.refresh("web", successor); r.str("error") != "invalid_grant" {
			t.Fatalf("the one successor after 49 reuses: got %d %s, want invalid_grant (family revoked)", r.status, r.raw)
		}
	})
}
