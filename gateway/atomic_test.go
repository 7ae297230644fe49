package gateway

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestAtomicHandler(t *testing.T) {
	fx := newFixture(t)
	var h AtomicHandler
	if w := serve(t, &h, http.MethodGet, "/x", "", nil); w.Code != http.StatusServiceUnavailable {
		t.Fatalf("empty: got %d, want 503", w.Code)
	}
	old, next := newUpstream(t, "old"), newUpstream(t, "new")
	public := []Rule{{Public: true}}
	h.Store(fx.gateway(t, []Route{{Prefix: "/x", Upstream: old.URL, Rules: public}}))
	if e := decodeEcho(t, serve(t, &h, http.MethodGet, "/x", "", nil)); e.Upstream != "old" {
		t.Fatalf("got %s, want old", e.Upstream)
	}
	h.Store(fx.gateway(t, []Route{{Prefix: "/x", Upstream: next.URL, Rules: public}, {Prefix: "/y", Upstream: next.URL, Rules: public}}))
	for _, p := range []string{"/x", "/y"} {
		if e := decodeEcho(t, serve(t, &h, http.MethodGet, p, "", nil)); e.Upstream != "new" {
			t.Errorf("%s after the swap: got %s, want new", p, e.Upstream)
		}
	}
}

// TestAtomicHandlerInFlight: a slow request that started on the old
// gateway completes, through the old gateway's route, after a new gateway
// took over; new requests meanwhile go to the new one.
func TestAtomicHandlerInFlight(t *testing.T) {
	fx := newFixture(t)
	started, release := make(chan struct{}), make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		io.WriteString(w, "slow answer from the old route")
	}))
	t.Cleanup(slow.Close)
	next := newUpstream(t, "new")
	public := []Rule{{Public: true}}
	var h AtomicHandler
	h.Store(fx.gateway(t, []Route{{Prefix: "/x", Upstream: slow.URL, Rules: public}}))
	srv := httptest.NewServer(&h)
	t.Cleanup(srv.Close)

	type result struct {
		status int
		body   string
		err    error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := http.Get(srv.URL + "/x")
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		done <- result{resp.StatusCode, string(b), err}
	}()
	<-started
	h.Store(fx.gateway(t, []Route{{Prefix: "/x", Upstream: next.URL, Rules: public}}))
	resp, err := http.Get(srv.URL + "/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if next.count() != 1 {
		t.Errorf("a request started after the swap did not reach the new route")
	}
	close(release)
	select {
	case r := <-done:
		if r.err != nil || r.status != http.StatusOK || r.body != "slow answer from the old route" {
			t.Fatalf("in-flight request: got %d %q (%v), want 200 from the old route", r.status, r.body, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the in-flight request never completed")
	}
}
