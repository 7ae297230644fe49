package authserver

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/secevent"
)

// setStatus posts a status update and returns the answer.
func (f *fixture) setStatus(token, stream, status string) (int, map[string]any) {
	f.t.Helper()
	return f.ssfCall("POST", pathSSFStatus, token, map[string]string{"stream_id": stream, "status": status, "reason": "test"})
}

// streamStatusOf reads the stream's status.
func (f *fixture) streamStatusOf(token, stream string) string {
	f.t.Helper()
	code, body := f.ssfCall("GET", pathSSFStatus+"?stream_id="+stream, token, nil)
	if code != http.StatusOK {
		f.t.Fatalf("read status: got %d %v, want 200", code, body)
	}
	s, _ := body["status"].(string)
	return s
}

// appendTokenEvents appends n token-revoked events and returns their IDs,
// as SETs carry them in "txn".
func (f *fixture) appendTokenEvents(n int) []string {
	f.t.Helper()
	var ids []string
	for range n {
		id, err := f.srv.cfg.Store.AppendEvent(f.t.Context(), storeEvent(secevent.TokenRevoked, "jti-"+strconv.Itoa(int(time.Now().UnixNano()))))
		if err != nil {
			f.t.Fatal(err)
		}
		ids = append(ids, strconv.FormatInt(id, 10))
	}
	return ids
}

// counterValue returns the value of the counter name, summed over its
// series whose label is value (all of them if label is "").
func counterValue(t testing.TB, f *fixture, name, label, value string) float64 {
	t.Helper()
	families, err := f.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, mf := range families {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			matches := label == ""
			for _, l := range m.GetLabel() {
				matches = matches || l.GetName() == label && l.GetValue() == value
			}
			if matches {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}

// txns returns the "txn" of every SET r accepted, in order, and fails the
// test if one jti came twice.
func (r *pushReceiver) txns(t *testing.T) []string {
	t.Helper()
	var got []string
	seen := map[string]bool{}
	for _, s := range r.sets() {
		jti, _ := s.claims["jti"].(string)
		if seen[jti] {
			t.Errorf("SET %s delivered twice", jti)
		}
		seen[jti] = true
		if txn, ok := s.claims["txn"].(string); ok {
			got = append(got, txn)
		}
	}
	return got
}

// TestSSFStreamStatus: the status endpoint (SSF 1.0 §8.1.2) reads and sets
// a stream's status; a paused poll stream holds its events and hands them
// out once enabled; a disabled one drops what happens while it is
// disabled.
func TestSSFStreamStatus(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	token := f.ssfReceiver("rcv", ScopeSSFManage)
	reader := f.ssfReceiver("reader", ScopeSSFRead)
	other := f.ssfReceiver("other", ScopeSSFManage)
	stream := f.createStream(token)
	pollNow := func() int {
		return len(f.poll(token, stream, map[string]any{"returnImmediately": true}))
	}

	if got := f.streamStatusOf(token, stream); got != statusEnabled {
		t.Errorf("new stream: got status %q, want enabled", got)
	}
	errs := []struct {
		name, method, token string
		body                any
		want                int
	}{
		{"unknown status", "POST", token, map[string]string{"stream_id": stream, "status": "stopped"}, 400},
		{"no status", "POST", token, map[string]string{"stream_id": stream}, 400},
		{"reason too long", "POST", token, map[string]string{"stream_id": stream, "status": "paused", "reason": strings.Repeat("x", 2000)}, 400},
		{"not JSON", "POST", token, "status=paused", 400},
		{"another client's stream", "POST", other, map[string]string{"stream_id": stream, "status": "paused"}, 404},
		{"read another client's stream", "GET", other, nil, 404},
		{"read scope cannot set", "POST", reader, map[string]string{"stream_id": stream, "status": "paused"}, 403},
		{"no token", "POST", "", map[string]string{"stream_id": stream, "status": "paused"}, 401},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			path := pathSSFStatus
			if tt.method == "GET" {
				path += "?stream_id=" + stream
			}
			if got, body := f.ssfCall(tt.method, path, tt.token, tt.body); got != tt.want {
				t.Errorf("got %d %v, want %d", got, body, tt.want)
			}
			if got := f.streamStatusOf(token, stream); got != statusEnabled {
				t.Errorf("after a refused request: status %q, want enabled", got)
			}
		})
	}

	if code, body := f.setStatus(token, stream, statusPaused); code != 200 || body["status"] != statusPaused {
		t.Fatalf("pause: got %d %v", code, body)
	}
	f.appendTokenEvents(3)
	if n := pollNow(); n != 0 {
		t.Errorf("paused stream: poll got %d SETs, want none", n)
	}
	f.setStatus(token, stream, statusEnabled)
	if n := pollNow(); n != 3 {
		t.Errorf("enabled again: poll got %d SETs, want the 3 held", n)
	}

	f.setStatus(token, stream, statusDisabled)
	f.appendTokenEvents(2)
	if n := pollNow(); n != 0 {
		t.Errorf("disabled stream: poll got %d SETs, want none", n)
	}
	f.setStatus(token, stream, statusEnabled)
	f.appendTokenEvents(1)
	sets := f.poll(token, stream, map[string]any{"returnImmediately": true})
	// The 3 events above were not acknowledged, but the disabled stream
	// dropped everything up to its enabling.
	if len(sets) != 1 {
		t.Errorf("enabled after disabled: got %d SETs, want only the 1 event appended since", len(sets))
	}
}

// TestSSFPushPausedAndResumed: a receiver that stays down is paused after
// PushPauseAfter (logged, counted), gets no more attempts, and once it is
// back and enables its stream gets the whole backlog — what failed and
// what happened while paused — once each, in order.
func TestSSFPushPausedAndResumed(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	f.srv.ssf.push = pushConfig{minBackoff: 10 * time.Millisecond, maxBackoff: 50 * time.Millisecond, pauseAfter: 300 * time.Millisecond}
	f.runServer()
	token := f.ssfReceiver("rcv", ScopeSSFManage)
	rcv := newPushReceiver(t)
	stream := f.createPushStream(token, rcv.srv.URL, "")

	want := f.appendTokenEvents(2)
	waitFor(t, 5*time.Second, "the first events", func() bool { _, n := rcv.counts(); return n == 2 })

	rcv.setMode(receiverDown)
	want = append(want, f.appendTokenEvents(2)...)
	waitFor(t, 10*time.Second, "the stream paused", func() bool { return f.streamStatusOf(token, stream) == statusPaused })
	if got := counterValue(t, f, "gatehouse_ssf_push_paused_total", "", ""); got != 1 {
		t.Errorf("gatehouse_ssf_push_paused_total: got %v, want 1", got)
	}
	if !strings.Contains(f.log.String(), "ssf push stream paused") {
		t.Errorf("no log line for the pause")
	}
	_, body := f.ssfCall("GET", pathSSFStatus+"?stream_id="+stream, token, nil)
	if reason, _ := body["reason"].(string); !strings.Contains(reason, "503") || strings.Contains(reason, "10.0.0.7") {
		t.Errorf("status reason: got %q, want the last failure's status and none of its body", reason)
	}
	attempts, _ := rcv.counts()
	want = append(want, f.appendTokenEvents(3)...) // held while paused
	time.Sleep(300 * time.Millisecond)
	if again, _ := rcv.counts(); again != attempts {
		t.Errorf("paused stream: got %d more attempts, want none", again-attempts)
	}

	rcv.setMode(receiverUp)
	if code, body := f.setStatus(token, stream, statusEnabled); code != 200 {
		t.Fatalf("enable: got %d %v", code, body)
	}
	waitFor(t, 5*time.Second, "the backlog", func() bool { _, n := rcv.counts(); return n >= len(want) })
	time.Sleep(100 * time.Millisecond) // anything sent twice would arrive now
	if got := rcv.txns(t); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("delivered events: got %v, want %v", got, want)
	}
	if got := f.streamStatusOf(token, stream); got != statusEnabled {
		t.Errorf("after the backlog: status %q, want enabled", got)
	}
	if got := counterValue(t, f, "gatehouse_ssf_push_attempts_total", "outcome", "delivered"); got != float64(len(want)) {
		t.Errorf("delivered attempts: got %v, want %d", got, len(want))
	}
}

// TestSSFPushSuccessRestartsThePauseClock: a receiver that fails often but
// accepts now and then is never paused: only failures without a success
// count.
func TestSSFPushSuccessRestartsThePauseClock(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	f.srv.ssf.push = pushConfig{minBackoff: 10 * time.Millisecond, maxBackoff: 20 * time.Millisecond, pauseAfter: time.Second}
	f.runServer()
	token := f.ssfReceiver("rcv", ScopeSSFManage)
	rcv := newPushReceiver(t)
	stream := f.createPushStream(token, rcv.srv.URL, "")
	var want []string
	for range 12 { // 12 × 100ms down: 1.2s of failures, never near 1s in a row
		rcv.setMode(receiverDown)
		want = append(want, f.appendTokenEvents(1)...)
		time.Sleep(100 * time.Millisecond)
		rcv.setMode(receiverUp)
		waitFor(t, 5*time.Second, "the event", func() bool { _, n := rcv.counts(); return n == len(want) })
	}
	if got := f.streamStatusOf(token, stream); got != statusEnabled {
		t.Errorf("got status %q, want enabled", got)
	}
	if got := rcv.txns(t); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("delivered events: got %v, want %v", got, want)
	}
}
