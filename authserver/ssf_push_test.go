package authserver

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/gatehouse-dev/gatehouse/internal/secevent"
)

// Modes of a pushReceiver.
const (
	receiverUp      = iota // 202
	receiverDown           // 503
	receiverHangsUp        // closes the connection without an answer
)

// pushReceiver is an RFC 8935 receiver on 127.0.0.1 that records what it
// gets. Its mode says how it answers.
type pushReceiver struct {
	srv *httptest.Server

	mu       sync.Mutex
	mode     int
	attempts int           // requests, answered or not
	accepted []pushedSET   // answered 202, in arrival order
	got      chan struct{} // receives after every accepted SET
}

type pushedSET struct {
	raw, contentType, authorization string
	claims                          jwt.MapClaims // unverified; see verifySET
}

func newPushReceiver(t *testing.T) *pushReceiver {
	r := &pushReceiver{got: make(chan struct{}, 1000)}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *pushReceiver) serve(w http.ResponseWriter, req *http.Request) {
	raw, err := io.ReadAll(req.Body)
	if err != nil {
		return
	}
	body := string(raw)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts++
	switch r.mode {
	case receiverDown:
		// An answer that is no RFC 8935 error: the stream's owner must
		// not read it back in the pause reason.
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("internal service page: db=10.0.0.7"))
		return
	case receiverHangsUp:
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	var claims jwt.MapClaims
	jwt.NewParser().ParseUnverified(body, &claims)
	r.accepted = append(r.accepted, pushedSET{raw: body, contentType: req.Header.Get("Content-Type"),
		authorization: req.Header.Get("Authorization"), claims: claims})
	w.WriteHeader(http.StatusAccepted)
	r.got <- struct{}{}
}

func (r *pushReceiver) setMode(m int) {
	r.mu.Lock()
	r.mode = m
	r.mu.Unlock()
}

func (r *pushReceiver) counts() (attempts, accepted int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.attempts, len(r.accepted)
}

func (r *pushReceiver) sets() []pushedSET {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]pushedSET(nil), r.accepted...)
}

// waitFor waits until cond holds, checking every 10ms, or fails the test
// after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// createPushStream creates a push stream for every supported event.
func (f *fixture) createPushStream(token, endpoint, authorization string) string {
	f.t.Helper()
	status, body := f.ssfCall("POST", pathSSFStreams, token, map[string]any{
		"delivery":         map[string]string{"method": deliveryPush, "endpoint_url": endpoint, "authorization_header": authorization},
		"events_requested": secevent.Supported})
	if status != http.StatusCreated {
		f.t.Fatalf("create push stream: got %d %v, want 201", status, body)
	}
	return body["stream_id"].(string)
}

// runServer runs the server's background work, pushes included, until the
// returned function is called or the test ends.
func (f *fixture) runServer() (stop func()) {
	ctx, cancel := context.WithCancel(f.t.Context())
	done := make(chan struct{})
	go func() { f.srv.Run(ctx); close(done) }()
	f.t.Cleanup(func() { cancel(); <-done })
	return cancel
}

// TestSSFPushRevocation: a push stream gets the SET of a revocation, signed
// (checked with golang-jwt), with the media type and the receiver's
// authorization header; deleting the stream stops its pushes.
func TestSSFPushRevocation(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	f.runServer()
	f.addUser("alice", "alice-pw-123456")
	secret := f.addClientWithRefresh("web")
	tok := f.passwordGrant("web", secret, "alice", "alice-pw-123456")
	token := f.ssfReceiver("rcv", ScopeSSFManage)
	rcv := newPushReceiver(t)
	stream := f.createPushStream(token, rcv.srv.URL+"/events", "Bearer receiver-secret")

	status, cfg := f.ssfCall("GET", pathSSFStreams+"?stream_id="+stream, token, nil)
	delivery, _ := cfg["delivery"].(map[string]any)
	if status != 200 || delivery["method"] != deliveryPush || delivery["endpoint_url"] != rcv.srv.URL+"/events" {
		t.Errorf("stream config: got %d %v, want push to the endpoint", status, cfg)
	}
	if _, ok := delivery["authorization_header"]; ok {
		t.Errorf("stream config echoes the authorization header: %v", delivery)
	}
	if status, _ := f.ssfCall("POST", pathSSFPoll+stream, token, map[string]any{"returnImmediately": true}); status != 400 {
		t.Errorf("poll of a push stream: got %d, want 400", status)
	}

	revoke := func(refresh string) {
		req, _ := http.NewRequest("POST", f.srv.Issuer()+pathRevoke, strings.NewReader(url.Values{"token": {refresh}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("web", secret)
		if resp, err := f.public.Client().Do(req); err != nil || resp.StatusCode != 200 {
			t.Fatalf("revoke: %v %v", resp, err)
		}
	}
	revoke(tok.str("refresh_token"))
	waitFor(t, 5*time.Second, "the pushed SET", func() bool { _, n := rcv.counts(); return n >= 1 })
	got := rcv.sets()
	if len(got) != 1 {
		t.Fatalf("got %d SETs, want 1", len(got))
	}
	set := got[0]
	if set.contentType != "application/secevent+jwt" || set.authorization != "Bearer receiver-secret" {
		t.Errorf("headers: got Content-Type %q Authorization %q, want application/secevent+jwt and the stream's",
			set.contentType, set.authorization)
	}
	var claims jwt.MapClaims
	_, err := jwt.ParseWithClaims(set.raw, &claims, func(tk *jwt.Token) (any, error) {
		kid, _ := tk.Header["kid"].(string)
		return f.ecKey(kid), nil
	}, jwt.WithValidMethods([]string{"ES256"}), jwt.WithIssuer(f.srv.Issuer()), jwt.WithAudience("rcv"), jwt.WithTimeFunc(f.clock.Now))
	if err != nil {
		t.Fatalf("golang-jwt: %v", err)
	}
	if events := claims["events"].(map[string]any); events[secevent.SessionRevoked] == nil {
		t.Errorf("events: got %v, want %s", events, secevent.SessionRevoked)
	}

	if status, _ := f.ssfCall("DELETE", pathSSFStreams+"?stream_id="+stream, token, nil); status != 204 {
		t.Fatalf("delete: got %d", status)
	}
	revoke(f.passwordGrant("web", secret, "alice", "alice-pw-123456").str("refresh_token"))
	time.Sleep(300 * time.Millisecond)
	if attempts, _ := rcv.counts(); attempts != 1 {
		t.Errorf("after the stream was deleted: got %d pushes, want 1", attempts)
	}
}

// TestSSFPushAfterOutage: the receiver answers 503, then drops connections,
// while events happen; when it is back it gets every event exactly once, in
// order. The transmitter backs off meanwhile.
func TestSSFPushAfterOutage(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	f.srv.ssf.push = pushConfig{minBackoff: 20 * time.Millisecond, maxBackoff: 200 * time.Millisecond}
	f.runServer()
	token := f.ssfReceiver("rcv", ScopeSSFManage)
	rcv := newPushReceiver(t)
	f.createPushStream(token, rcv.srv.URL, "")

	var want []string // txn of every event, in order
	appendEvents := func(n int) {
		for range n {
			id, err := f.srv.cfg.Store.AppendEvent(t.Context(), storeEvent(secevent.TokenRevoked, "jti-"+strconv.Itoa(len(want))))
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, strconv.FormatInt(id, 10))
		}
	}
	appendEvents(2)
	waitFor(t, 5*time.Second, "the first events", func() bool { _, n := rcv.counts(); return n == 2 })

	rcv.setMode(receiverDown)
	downAt, _ := rcv.counts()
	appendEvents(3)
	waitFor(t, 5*time.Second, "retries against 503", func() bool { a, _ := rcv.counts(); return a >= downAt+3 })
	rcv.setMode(receiverHangsUp)
	hangAt, _ := rcv.counts()
	appendEvents(3)
	waitFor(t, 5*time.Second, "retries against a dropped connection", func() bool { a, _ := rcv.counts(); return a >= hangAt+2 })
	time.Sleep(time.Second)
	attempts, accepted := rcv.counts()
	// A second or more of outage at ≥ 10ms per retry (20ms jittered),
	// backing off to 100–200ms: a dozen or so; without backoff, hundreds.
	t.Logf("%d attempts during the outage", attempts-accepted)
	if retries := attempts - accepted; retries > 40 {
		t.Errorf("got %d attempts during the outage, want a backoff", retries)
	}
	rcv.setMode(receiverUp)
	appendEvents(2)
	waitFor(t, 5*time.Second, "every event", func() bool { _, n := rcv.counts(); return n >= len(want) })
	time.Sleep(200 * time.Millisecond) // anything sent twice would arrive now

	var got []string
	seen := map[string]bool{}
	for _, s := range rcv.sets() {
		jti, _ := s.claims["jti"].(string)
		if seen[jti] {
			t.Errorf("SET %s delivered twice", jti)
		}
		seen[jti] = true
		txn, _ := s.claims["txn"].(string)
		got = append(got, txn)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("delivered events: got %v, want %v", got, want)
	}
}

// TestSSFPushDeadReceiverIsolated: streams whose receivers hang or refuse
// connections do not delay a healthy stream, nor the server.
func TestSSFPushDeadReceiverIsolated(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	f.runServer()

	release := make(chan struct{})
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select { // until the pusher gives up (10s) or the test ends
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(hanging.Close)
	t.Cleanup(func() { close(release) })
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	if c, err := net.DialTimeout("tcp", strings.TrimPrefix(closedURL, "http://"), time.Second); err == nil {
		c.Close()
		t.Skip("the closed receiver's port was taken again")
	}
	f.createPushStream(f.ssfReceiver("hangs", ScopeSSFManage), hanging.URL, "")
	f.createPushStream(f.ssfReceiver("gone", ScopeSSFManage), closedURL, "")
	healthy := newPushReceiver(t)
	f.createPushStream(f.ssfReceiver("healthy", ScopeSSFManage), healthy.srv.URL, "")

	for i := range 3 {
		start := time.Now()
		f.srv.cfg.Store.AppendEvent(t.Context(), storeEvent(secevent.TokenRevoked, "jti-"+strconv.Itoa(i)))
		waitFor(t, 3*time.Second, "the healthy receiver", func() bool { _, n := healthy.counts(); return n == i+1 })
		t.Logf("event %d reached the healthy receiver after %v", i, time.Since(start))
		start = time.Now()
		if status, _ := get(t, f.public, "/.well-known/ssf-configuration"); status != 200 || time.Since(start) > time.Second {
			t.Errorf("the server answered %d after %v", status, time.Since(start))
		}
	}
}

// TestSSFPushStopsWithServer: when Run's context ends, so do the pushes.
func TestSSFPushStopsWithServer(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	stop := f.runServer()
	rcv := newPushReceiver(t)
	f.createPushStream(f.ssfReceiver("rcv", ScopeSSFManage), rcv.srv.URL, "")
	f.srv.cfg.Store.AppendEvent(t.Context(), storeEvent(secevent.TokenRevoked, "jti-a"))
	waitFor(t, 5*time.Second, "the first event", func() bool { _, n := rcv.counts(); return n == 1 })
	stop()
	time.Sleep(100 * time.Millisecond)
	f.srv.cfg.Store.AppendEvent(t.Context(), storeEvent(secevent.TokenRevoked, "jti-b"))
	time.Sleep(300 * time.Millisecond)
	if attempts, _ := rcv.counts(); attempts != 1 {
		t.Errorf("after the server stopped: got %d pushes, want 1", attempts)
	}
}

// TestSSFPushEndpointValidation: endpoint_url must be an absolute https URL,
// or http on a loopback host. The server is not running, so nothing is
// pushed to the valid ones.
func TestSSFPushEndpointValidation(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	tests := []struct {
		name, endpoint string
		want           int
	}{
		{"missing", "", 400},
		{"relative", "/events", 400},
		{"no scheme", "receiver.example/events", 400},
		{"no host", "https:///events", 400},
		{"opaque", "https:receiver.example", 400},
		{"ftp", "ftp://receiver.example/events", 400},
		{"http on a public host", "http://receiver.example/events", 400},
		{"http on a private address", "http://10.0.0.1/events", 400},
		{"credentials", "https://user:pw@receiver.example/events", 400},
		{"fragment", "https://receiver.example/events#x", 400},
		{"not a URL", "https://receiver example/", 400},
		{"https", "https://receiver.example/events", 201},
		{"http on 127.0.0.1", "http://127.0.0.1:1/events", 201},
		{"http on ::1", "http://[::1]:1/events", 201},
		{"http on localhost", "http://localhost:1/events", 201},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token := f.ssfReceiver("rcv"+strconv.Itoa(i), ScopeSSFManage)
			status, body := f.ssfCall("POST", pathSSFStreams, token, map[string]any{
				"delivery": map[string]string{"method": deliveryPush, "endpoint_url": tt.endpoint}})
			if status != tt.want {
				t.Errorf("got %d %v, want %d", status, body, tt.want)
			}
		})
	}
	token := f.ssfReceiver("header", ScopeSSFManage)
	status, _ := f.ssfCall("POST", pathSSFStreams, token, map[string]any{"delivery": map[string]string{
		"method": deliveryPush, "endpoint_url": "https://receiver.example/", "authorization_header": "Bearer x\r\nX-Evil: 1"}})
	if status != 400 {
		t.Errorf("authorization header with a line break: got %d, want 400", status)
	}
}
