package ssf_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/authserver"
	"github.com/gatehouse-dev/gatehouse/internal/accounts"
	"github.com/gatehouse-dev/gatehouse/internal/jose"
	"github.com/gatehouse-dev/gatehouse/internal/keyring"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/internal/secevent"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/resource"
	"github.com/gatehouse-dev/gatehouse/ssf"
)

const (
	unitIssuer = "https://issuer.example.test"
	unitAuth   = "Bearer push-secret-0123456789"
)

// noToken is a TokenSource for receivers that are never Run.
type noToken struct{}

func (noToken) Token(context.Context) (string, error) { return "", errors.New("not in this test") }

// unitSET is a valid SET revoking the token with jti tokenID, issued now.
func unitSET(tokenID string) secevent.SET {
	now := time.Now().Unix()
	body, _ := json.Marshal(secevent.EventPayload{EventTimestamp: now})
	return secevent.SET{Issuer: unitIssuer, IssuedAt: now, ID: rand.Text(), Audience: []string{"rcv"},
		Subject: &secevent.SubjectID{Format: secevent.FormatOpaque, ID: tokenID},
		Events:  map[string]json.RawMessage{secevent.TokenRevoked: body}}
}

// pushed POSTs body to h as a transmitter would and returns the status
// and the "err" of the answer.
func pushed(t *testing.T, h http.Handler, method, authorization, contentType, body string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(method, "/ssf/push", strings.NewReader(body))
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	var e struct {
		Err         string `json:"err"`
		Description string `json:"description"`
	}
	if w.Code != http.StatusAccepted {
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Description == "" {
			t.Errorf("got %d %q, want an RFC 8935 error object", w.Code, w.Body)
		}
		if ct := w.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("error Content-Type: got %q, want application/json", ct)
		}
	}
	return w.Code, e.Err
}

// TestPushHandler: RFC 8935 §2 at the receiver. Good SETs are accepted
// (202) and applied once, however often they come; everything else gets
// 400 with the §2.3 error code that says why — or 503 while the keys
// cannot be had — and changes nothing.
func TestPushHandler(t *testing.T) {
	key, err := jose.GenerateKey(jose.ES256)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := jose.GenerateKey(jose.ES256)
	var mu sync.Mutex
	applied := map[string]int{}
	rcv, err := ssf.New(ssf.Config{Issuer: unitIssuer, Audience: "rcv", Token: noToken{},
		Keys: jose.NewKeySet(key.Public()), PushURL: "https://rcv.example.test/ssf/push", PushAuthorization: unitAuth,
		MaxTokenLifetime: 5 * time.Minute,
		OnEvent:          func(jti, _ string) { mu.Lock(); applied[jti]++; mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	h := rcv.PushHandler()
	sign := func(k *jose.PrivateKey, typ string, set secevent.SET) string {
		raw, err := jose.Sign(k, typ, set)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	edit := func(f func(*secevent.SET)) string {
		set := unitSET("jti-refused")
		f(&set)
		return sign(key, jose.TypeSET, set)
	}
	const ct = "application/secevent+jwt"
	good := unitSET("jti-good")
	goodRaw := sign(key, jose.TypeSET, good)

	tests := []struct {
		name, method, auth, contentType, body string
		wantStatus                            int
		wantErr                               string
	}{
		{"accepted", "POST", unitAuth, ct, goodRaw, 202, ""},
		{"the same SET again", "POST", unitAuth, ct, goodRaw, 202, ""},
		{"media type with a parameter", "POST", unitAuth, ct + "; charset=utf-8", goodRaw, 202, ""},
		{"GET", "GET", unitAuth, ct, goodRaw, 405, "invalid_request"},
		{"no authorization", "POST", "", ct, goodRaw, 400, "authentication_failed"},
		{"wrong authorization", "POST", "Bearer push-secret-0123456788", ct, goodRaw, 400, "authentication_failed"},
		{"authorization prefix", "POST", "Bearer push-secret", ct, goodRaw, 400, "authentication_failed"},
		{"wrong media type", "POST", unitAuth, "application/jwt", goodRaw, 400, "invalid_request"},
		{"no media type", "POST", unitAuth, "", goodRaw, 400, "invalid_request"},
		{"not a JWT", "POST", unitAuth, ct, "hello", 400, "invalid_request"},
		{"empty", "POST", unitAuth, ct, "", 400, "invalid_request"},
		{"too large", "POST", unitAuth, ct, strings.Repeat("a", 70<<10), 400, "invalid_request"},
		{"an access token", "POST", unitAuth, ct, sign(key, jose.TypeAccessToken, unitSET("jti-refused")), 400, "invalid_request"},
		{"another key", "POST", unitAuth, ct, sign(other, jose.TypeSET, unitSET("jti-refused")), 400, "invalid_key"},
		{"tampered", "POST", unitAuth, ct, goodRaw[:len(goodRaw)-4] + "AAAA", 400, "invalid_key"},
		{"another issuer", "POST", unitAuth, ct, edit(func(s *secevent.SET) { s.Issuer = "https://evil.example.test" }), 400, "invalid_issuer"},
		{"another audience", "POST", unitAuth, ct, edit(func(s *secevent.SET) { s.Audience = []string{"orders"} }), 400, "invalid_audience"},
		{"issued in the future", "POST", unitAuth, ct, edit(func(s *secevent.SET) { s.IssuedAt = time.Now().Add(time.Hour).Unix() }), 400, "invalid_request"},
		{"no iat", "POST", unitAuth, ct, edit(func(s *secevent.SET) { s.IssuedAt = 0 }), 400, "invalid_request"},
		{"no jti", "POST", unitAuth, ct, edit(func(s *secevent.SET) { s.ID = "" }), 400, "invalid_request"},
		{"two events", "POST", unitAuth, ct, edit(func(s *secevent.SET) {
			s.Events[secevent.SessionRevoked] = json.RawMessage(`{}`)
		}), 400, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, code := pushed(t, h, tt.method, tt.auth, tt.contentType, tt.body)
			if status != tt.wantStatus || code != tt.wantErr {
				t.Errorf("got %d %q, want %d %q", status, code, tt.wantStatus, tt.wantErr)
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if len(applied) != 1 || applied[good.ID] != 1 {
		t.Errorf("applied %v, want only the good SET, once", applied)
	}
	if got := rcv.Check(&resource.Principal{TokenID: "jti-good"}); !errors.Is(got, resource.ErrRevoked) {
		t.Errorf("the good SET's token: got %v, want ErrRevoked", got)
	}
	if n := rcv.Denylist().Len(); n != 1 {
		t.Errorf("denylist holds %d entries, want 1: a refused SET changed it", n)
	}

	t.Run("too old to matter", func(t *testing.T) {
		old := unitSET("jti-old")
		old.IssuedAt = time.Now().Add(-time.Hour).Unix()
		old.Events[secevent.TokenRevoked], _ = json.Marshal(secevent.EventPayload{EventTimestamp: old.IssuedAt})
		if status, code := pushed(t, h, "POST", unitAuth, ct, sign(key, jose.TypeSET, old)); status != 202 {
			t.Errorf("got %d %q, want 202", status, code)
		}
		if rcv.Denylist().Len() != 1 {
			t.Errorf("an event older than MaxTokenLifetime was applied")
		}
	})
	t.Run("keys unavailable", func(t *testing.T) {
		down := httptest.NewServer(http.NotFoundHandler())
		down.Close()
		r, err := ssf.New(ssf.Config{Issuer: down.URL, Audience: "rcv", Token: noToken{},
			PushURL: "https://rcv.example.test/ssf/push", PushAuthorization: unitAuth})
		if err != nil {
			t.Fatal(err)
		}
		set := unitSET("jti-x")
		set.Issuer = down.URL
		if status, code := pushed(t, r.PushHandler(), "POST", unitAuth, ct, sign(key, jose.TypeSET, set)); status != 503 || code != "" {
			t.Errorf("got %d %q, want 503 without an RFC 8935 code: no fault of the SET", status, code)
		}
	})
	t.Run("poll receiver", func(t *testing.T) {
		r, _ := ssf.New(ssf.Config{Issuer: unitIssuer, Audience: "rcv", Token: noToken{}, Keys: jose.NewKeySet(key.Public())})
		if status, code := pushed(t, r.PushHandler(), "POST", unitAuth, ct, goodRaw); status != 400 || code != "access_denied" {
			t.Errorf("got %d %q, want 400 access_denied", status, code)
		}
	})
}

// TestPushConfig: New checks the push settings and makes a secret when
// none is given.
func TestPushConfig(t *testing.T) {
	tests := []struct {
		name, url, auth string
		wantErr         bool
	}{
		{"https", "https://gw.internal:9090/ssf/push", "", false},
		{"http", "http://127.0.0.1:9090/ssf/push", "Bearer x", false},
		{"relative", "/ssf/push", "", true},
		{"ftp", "ftp://gw.internal/ssf/push", "", true},
		{"credentials", "https://u:p@gw.internal/ssf/push", "", true},
		{"fragment", "https://gw.internal/ssf/push#x", "", true},
		{"header injection", "https://gw.internal/ssf/push", "Bearer x\r\nX-Evil: 1", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ssf.New(ssf.Config{Issuer: unitIssuer, Audience: "rcv", Token: noToken{}, PushURL: tt.url, PushAuthorization: tt.auth})
			if (err != nil) != tt.wantErr {
				t.Errorf("got %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

// events counts, safely, the SETs a receiver applied, by jti and by the
// transmitter's event ID (before the dot of the jti).
type events struct {
	mu     sync.Mutex
	byJTI  map[string]int
	byID   map[string]int
	errors []string
}

func newEvents() *events { return &events{byJTI: map[string]int{}, byID: map[string]int{}} }

func (ev *events) onEvent(jti, _ string) {
	id, _, _ := strings.Cut(jti, ".")
	ev.mu.Lock()
	ev.byJTI[jti]++
	ev.byID[id]++
	ev.mu.Unlock()
}

func (ev *events) onError(err error) {
	ev.mu.Lock()
	ev.errors = append(ev.errors, err.Error())
	ev.mu.Unlock()
}

func (ev *events) distinct() int {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	return len(ev.byID)
}

func (ev *events) logged(s string) bool {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	for _, e := range ev.errors {
		if strings.Contains(e, s) {
			return true
		}
	}
	return false
}

// appendEvents appends n token-revoked events straight into the store, as
// another process would.
func (e *env) appendEvents(n int) {
	e.t.Helper()
	for range n {
		if _, err := e.store.AppendEvent(e.t.Context(), store.Event{Type: secevent.TokenRevoked, TokenID: rand.Text(),
			Subject: "u", CreatedAt: time.Now().UTC()}); err != nil {
			e.t.Fatal(err)
		}
	}
}

// TestPushReceiverEndToEnd: a push receiver against Gatehouse's own
// transmitter. Every event reaches it, each SET applied once, across an
// outage of its endpoint (the transmitter retries) and a restart of the
// transmitter that forgets every stream (the receiver creates its stream
// again, and gets the retained events again on it); when it stops, its
// stream goes.
func TestPushReceiverEndToEnd(t *testing.T) {
	e := newEnv(t, openSQLite(t), keyring.Generate())
	ev := newEvents()
	ctx, stop := context.WithCancel(t.Context())
	p := newPushEndpoint(t)
	rcv := e.newReceiver("rcv", e.issuer, func(c *ssf.Config) {
		c.PushURL, c.OnEvent, c.OnError, c.CheckInterval = p.srv.URL+"/ssf/push", ev.onEvent, ev.onError, 100*time.Millisecond
	})
	p.mu.Lock()
	p.handler = rcv.PushHandler()
	p.mu.Unlock()
	done := make(chan struct{})
	go func() { rcv.Run(ctx); close(done) }()
	t.Cleanup(func() { stop(); <-done })

	e.appendEvents(5)
	waitFor(t, 10*time.Second, "first 5 events", func() bool { return ev.distinct() >= 5 })
	p.setDown(true)
	e.appendEvents(5)
	time.Sleep(300 * time.Millisecond)
	p.setDown(false)
	waitFor(t, 15*time.Second, "5 events after the outage", func() bool { return ev.distinct() >= 10 })
	e.start() // a new server: no streams
	e.appendEvents(5)
	waitFor(t, 15*time.Second, "5 events after the restart", func() bool { return ev.distinct() >= 15 })
	time.Sleep(200 * time.Millisecond)

	ev.mu.Lock()
	for jti, n := range ev.byJTI {
		if n != 1 {
			t.Errorf("SET %s applied %d times, want once", jti, n)
		}
	}
	if len(ev.byID) != 15 {
		t.Errorf("got %d distinct events, want 15", len(ev.byID))
	}
	ev.mu.Unlock()
	if n := rcv.Denylist().Len(); n != 15 {
		t.Errorf("denylist holds %d entries, want 15", n)
	}

	stop()
	<-done
	token := e.managerToken(t, "rcv")
	if streams := e.streams(t, token); len(streams) != 0 {
		t.Errorf("after Run ended: the client still has streams %v", streams)
	}
}

// managerToken gives the receiver client id a new secret and returns a
// client_credentials token of it.
func (e *env) managerToken(t *testing.T, id string) string {
	t.Helper()
	_, secret, err := e.accts.PutClient(t.Context(), accounts.ClientSpec{ID: id, Grants: []string{oauth.GrantClientCredentials},
		Scopes: []string{authserver.ScopeSSFManage}, Audience: []string{e.issuer}})
	if err != nil {
		t.Fatal(err)
	}
	status, tok := e.form("/oauth2/token", id, secret, url.Values{"grant_type": {"client_credentials"}, "scope": {authserver.ScopeSSFManage}})
	if status != http.StatusOK {
		t.Fatalf("token: %d %v", status, tok)
	}
	return tok["access_token"].(string)
}

// streams lists the caller's streams.
func (e *env) streams(t *testing.T, token string) []map[string]any {
	t.Helper()
	req, _ := http.NewRequest("GET", e.issuer+"/ssf/streams", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var list []map[string]any
	if err := json.Unmarshal(data, &list); err != nil {
		t.Fatalf("streams: %d %s", resp.StatusCode, data)
	}
	return list
}

// TestPushStreamPausedThenEnabledByTheReceiver: the transmitter pauses the
// stream of a receiver whose endpoint fails; the receiver, which can still
// reach the transmitter, enables it again at its next check, and once its
// endpoint answers it gets what happened meanwhile.
func TestPushStreamPausedThenEnabledByTheReceiver(t *testing.T) {
	e := newEnvWith(t, openSQLite(t), keyring.Generate(), func(c *authserver.Config) { c.PushPauseAfter = 300 * time.Millisecond })
	ev := newEvents()
	_, p := e.pushReceiver("rcv", func(c *ssf.Config) {
		c.OnEvent, c.OnError, c.CheckInterval = ev.onEvent, ev.onError, 200*time.Millisecond
	})
	e.appendEvents(1)
	waitFor(t, 10*time.Second, "the first event", func() bool { return ev.distinct() == 1 })
	p.setDown(true)
	e.appendEvents(3)
	waitFor(t, 15*time.Second, "the stream paused and enabled again", func() bool { return ev.logged("was paused") })
	p.setDown(false)
	waitFor(t, 15*time.Second, "the events of the outage", func() bool { return ev.distinct() == 4 })
}

// TestPushStale: a push receiver whose endpoint the transmitter cannot
// reach turns stale although it reaches the transmitter, and fresh again
// once pushes arrive; failing closed, it refuses tokens meanwhile.
func TestPushStale(t *testing.T) {
	e := newEnv(t, openSQLite(t), keyring.Generate())
	var mu sync.Mutex
	var changes []bool
	rcv, p := e.pushReceiver("rcv", func(c *ssf.Config) {
		c.StaleAfter, c.CheckInterval, c.FailClosed = 400*time.Millisecond, 100*time.Millisecond, true
		c.OnStale = func(stale bool, _ time.Time) { mu.Lock(); changes = append(changes, stale); mu.Unlock() }
	})
	live := &resource.Principal{TokenID: "live", IssuedAt: time.Now()}
	time.Sleep(600 * time.Millisecond) // verification events arrive
	if err := rcv.Check(live); err != nil {
		t.Fatalf("pushes arriving: got %v, want the token accepted", err)
	}
	p.setDown(true)
	waitFor(t, 5*time.Second, "stale", func() bool { return errors.Is(rcv.Check(live), resource.ErrRevocationsUnavailable) })
	p.setDown(false)
	waitFor(t, 10*time.Second, "fresh again", func() bool { return rcv.Check(live) == nil })
	mu.Lock()
	defer mu.Unlock()
	if len(changes) < 2 || !changes[0] || changes[len(changes)-1] {
		t.Errorf("OnStale calls: got %v, want stale, then fresh", changes)
	}
}

// FuzzPushHandler: whatever a client sends to the push endpoint, with or
// without the stream's secret, the answer is a 4xx with an error object or,
// for a SET signed by the transmitter, 202 — never a panic or a 5xx — and
// only a SET signed by the transmitter changes the denylist.
func FuzzPushHandler(f *testing.F) {
	key, err := jose.GenerateKey(jose.ES256)
	if err != nil {
		f.Fatal(err)
	}
	rcv, err := ssf.New(ssf.Config{Issuer: unitIssuer, Audience: "rcv", Token: noToken{},
		Keys: jose.NewKeySet(key.Public()), PushURL: "https://rcv.example.test/ssf/push", PushAuthorization: unitAuth})
	if err != nil {
		f.Fatal(err)
	}
	good, _ := jose.Sign(key, jose.TypeSET, unitSET("jti-seed"))
	f.Add("POST", unitAuth, "application/secevent+jwt", good)
	f.Add("POST", unitAuth, "application/secevent+jwt", "eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.")
	f.Add("POST", "", "application/secevent+jwt", good)
	f.Add("PUT", unitAuth, "text/plain; charset=\"", "{}")
	f.Add("POST", unitAuth, "application/secevent+jwt", strings.Repeat(".", 100))
	h := rcv.PushHandler()
	f.Fuzz(func(t *testing.T, method, auth, contentType, body string) {
		before := rcv.Denylist().Len()
		req, err := http.NewRequest(method, "https://rcv.example.test/ssf/push", strings.NewReader(body))
		if err != nil {
			t.Skip()
		}
		req.Header.Set("Authorization", auth)
		req.Header.Set("Content-Type", contentType)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code >= 500 || w.Code != http.StatusAccepted && w.Code < 400 {
			t.Fatalf("got %d %q", w.Code, w.Body)
		}
		if w.Code == http.StatusAccepted && strings.TrimSpace(body) != good {
			t.Fatalf("accepted %q", body)
		}
		if w.Code != http.StatusAccepted && rcv.Denylist().Len() != before {
			t.Fatalf("a refused push changed the denylist")
		}
	})
}
