package gateway

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestRateLimit walks one gateway through a sequence of requests on a
// settable clock: buckets per subject (whatever the credential), per client
// address when there is no subject, per route when a route has a limit of
// its own.
func TestRateLimit(t *testing.T) {
	fx := newFixture(t)
	up := newUpstream(t, "svc")
	g := fx.gateway(t, []Route{
		{Prefix: "/api", Upstream: up.URL},
		{Prefix: "/strict", Upstream: up.URL, RateLimit: &RateLimit{Rate: 0.5, Burst: 1}},
		{Prefix: "/unlimited", Upstream: up.URL, RateLimit: &RateLimit{}},
		{Prefix: "/pub", Upstream: up.URL, Rules: []Rule{{Public: true}}},
	}, func(c *Config) { c.RateLimit = RateLimit{Rate: 1, Burst: 2} })
	alice, carol := "Bearer "+fx.mintFor(t, "alice"), "Bearer "+fx.mintFor(t, "carol")
	aliceBasic := basicHeader("alice", testUsers["alice"].password)
	steps := []struct {
		name, path, auth, remote string
		advance                  time.Duration
		wantStatus               int
		wantRetryAfter           string
	}{
		{name: "alice_1", path: "/api", auth: alice, wantStatus: 200},
		{name: "alice_2_burst", path: "/api", auth: alice, wantStatus: 200},
		{name: "alice_3_limited", path: "/api", auth: alice, wantStatus: 429, wantRetryAfter: "1"},
		{name: "alice_basic_same_subject", path: "/api", auth: aliceBasic, wantStatus: 429, wantRetryAfter: "1"},
		{name: "carol_own_bucket", path: "/api", auth: carol, wantStatus: 200},
		{name: "alice_refilled", path: "/api", auth: aliceBasic, advance: time.Second, wantStatus: 200},
		{name: "alice_empty_again", path: "/api", auth: alice, wantStatus: 429, wantRetryAfter: "1"},
		{name: "route_limit_own_bucket", path: "/strict", auth: alice, wantStatus: 200},
		{name: "route_limit", path: "/strict", auth: alice, wantStatus: 429, wantRetryAfter: "2"},
		{name: "route_without_limit_1", path: "/unlimited", auth: alice, wantStatus: 200},
		{name: "route_without_limit_2", path: "/unlimited", auth: alice, wantStatus: 200},
		{name: "route_without_limit_3", path: "/unlimited", auth: alice, wantStatus: 200},
		{name: "anonymous_1", path: "/pub", remote: "192.0.2.1:1000", wantStatus: 200},
		{name: "anonymous_2_other_port", path: "/pub", remote: "192.0.2.1:2000", wantStatus: 200},
		{name: "anonymous_limited", path: "/pub", remote: "192.0.2.1:3000", wantStatus: 429, wantRetryAfter: "1"},
		{name: "other_address", path: "/pub", remote: "192.0.2.2:1000", wantStatus: 200},
		{name: "forged_forwarded_for_ignored", path: "/pub", remote: "192.0.2.1:1000", wantStatus: 429, wantRetryAfter: "1"},
		{name: "bad_token_1", path: "/api", auth: "Bearer x.y.z", remote: "192.0.2.3:1", wantStatus: 401},
		{name: "bad_token_2", path: "/api", auth: "Bearer x.y.z", remote: "192.0.2.3:1", wantStatus: 401},
		{name: "bad_token_limited", path: "/api", auth: "Bearer x.y.z", remote: "192.0.2.3:1", wantStatus: 429, wantRetryAfter: "1"},
	}
	for _, s := range steps {
		fx.clock.Advance(s.advance)
		before := up.count()
		r := httptest.NewRequest(http.MethodGet, s.path, nil)
		if s.remote != "" {
			r.RemoteAddr = s.remote
		}
		r.Header.Set("X-Forwarded-For", "198.51.100.7")
		if s.auth != "" {
			r.Header.Set("Authorization", s.auth)
		}
		w := serveRequest(g, r)
		if w.Code != s.wantStatus {
			t.Fatalf("%s: got %d %s, want %d", s.name, w.Code, w.Body, s.wantStatus)
		}
		if got := w.Header().Get("Retry-After"); got != s.wantRetryAfter {
			t.Errorf("%s: got Retry-After %q, want %q", s.name, got, s.wantRetryAfter)
		}
		if s.wantStatus == http.StatusTooManyRequests {
			if code := errorCode(t, w); code != "rate_limited" {
				t.Errorf("%s: got error %q, want rate_limited", s.name, code)
			}
			if up.count() != before {
				t.Errorf("%s: the upstream was called", s.name)
			}
		}
	}
}

// TestLimiterBounded: the limiter never tracks more identities than its
// bound; buckets that have refilled are forgotten first, a drained one is
// kept.
func TestLimiterBounded(t *testing.T) {
	c := &clock{}
	const max = 100
	l := newLimiter(RateLimit{Rate: 1, Burst: 2}, max, c.Now)
	hot := subjectIdentity("hot")
	l.wait(hot)
	for i := range max - 1 {
		l.wait(identity{id: fmt.Sprint(i)})
	}
	c.Advance(2 * time.Second) // every bucket is full again
	l.wait(hot)
	l.wait(hot) // but this one
	l.wait(identity{id: "one more"})
	if n := len(l.buckets); n > max || n < 2 {
		t.Fatalf("got %d buckets, want the refilled ones forgotten", n)
	}
	if _, ok := l.buckets[hot]; !ok {
		t.Fatalf("the drained bucket was forgotten while refilled ones were kept")
	}
	if d := l.wait(hot); d == 0 {
		t.Fatalf("got no wait for the drained bucket: it was reset")
	}
	for i := range 10 * max {
		l.wait(identity{id: fmt.Sprint("new", i)})
		if n := len(l.buckets); n > max {
			t.Fatalf("after %d new identities: got %d buckets, want at most %d", i+1, n, max)
		}
	}
}
