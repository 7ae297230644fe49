package authserver_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/accounts"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

func TestPerClientLifetimes(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		e := newTokenEnv(t, st, nil)
		standardClients(e)
		e.client(accounts.ClientSpec{ID: "short", Grants: []string{"password", "refresh_token"},
			AccessTokenTTL: time.Minute, RefreshTokenTTL: time.Hour, RefreshAbsoluteTTL: 2 * time.Hour})
		e.user("alice")
		start := e.Clock.Now()
		tok := e.login("short", "alice")
		if got := e.introspect("rs", tok.AccessToken, "").body["exp"]; got != float64(start.Add(time.Minute).Unix()) {
			t.Errorf("access token exp: got %v, want login + the client's 1m", got)
		}
		rt := tok.RefreshToken
		checkRefreshExp := func(want time.Time) {
			t.Helper()
			if got := e.introspect("short", rt, "refresh_token").body["exp"]; got != float64(want.Unix()) {
				t.Errorf("refresh token exp: got %v, want %v", got, want.Unix())
			}
		}
		checkRefreshExp(start.Add(time.Hour))
		for _, step := range []time.Duration{50 * time.Minute, 50 * time.Minute} {
			e.Clock.Advance(step)
			r := e.refresh("short", rt)
			if r.status != http.StatusOK {
				t.Fatalf("refresh within the idle lifetime: got %d %s, want 200", r.status, r.raw)
			}
			rt = r.str("refresh_token")
		}
		checkRefreshExp(start.Add(2 * time.Hour)) // capped by the absolute lifetime, not 100m + 1h
		e.Clock.Advance(20 * time.Minute)
		if r := e.refresh("short", rt); r.str("error") != "invalid_grant" {
			t.Errorf("refresh at the absolute lifetime: got %d %s, want invalid_grant", r.status, r.raw)
		}

		idle := e.login("short", "alice")
		e.Clock.Advance(time.Hour)
		if r := e.refresh("short", idle.RefreshToken); r.str("error") != "invalid_grant" {
			t.Errorf("refresh after the idle lifetime: got %d %s, want invalid_grant", r.status, r.raw)
		}
		// The server's defaults for a client without its own: 5m and 24h.
		web := e.login("web", "alice")
		now := e.Clock.Now()
		if got := e.introspect("rs", web.AccessToken, "").body["exp"]; got != float64(now.Add(5*time.Minute).Unix()) {
			t.Errorf("default access token exp: got %v, want now + 5m", got)
		}
		if got := e.introspect("web", web.RefreshToken, "").body["exp"]; got != float64(now.Add(24*time.Hour).Unix()) {
			t.Errorf("default refresh token exp: got %v, want now + 24h", got)
		}
	})
}
