package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// newEvent returns an event of type typ with every field but the ID set,
// created at at.
func newEvent(typ string, at time.Time) store.Event {
	return store.Event{
		Type:      typ,
		Subject:   "u1",
		SessionID: "fam",
		ClientID:  "backend",
		TokenID:   "jti-1",
		Data:      []byte(`{"reason": "refresh token reused",  "replica":2}`),
		CreatedAt: at,
	}
}

// appendEvents appends es and returns them with the IDs they were given,
// reporting an error unless each ID is greater than the one before.
func appendEvents(t *testing.T, s store.Store, es ...store.Event) []store.Event {
	t.Helper()
	var last int64
	out := make([]store.Event, len(es))
	for i, e := range es {
		id, err := s.AppendEvent(t.Context(), e)
		must(t, "AppendEvent", err)
		if id <= last {
			t.Errorf("AppendEvent #%d: got ID %d, want more than %d", i, id, last)
		}
		e.ID, last = id, id
		out[i] = e
	}
	return out
}

// checkEvents reports an error unless ListEvents(afterID, limit) returns
// want, with Data nil exactly where want's is.
func checkEvents(t *testing.T, s store.Store, afterID int64, limit int, want ...store.Event) {
	t.Helper()
	what := fmt.Sprintf("ListEvents(%d, %d)", afterID, limit)
	got, err := s.ListEvents(t.Context(), afterID, limit)
	if err != nil {
		t.Errorf("%s: got error %v, want nil", what, err)
		return
	}
	check(t, what, got, want)
	for i := range min(len(got), len(want)) {
		checkNil(t, fmt.Sprintf("%s[%d].Data", what, i), got[i].Data, want[i].Data)
	}
}

var eventCases = []testCase{
	{"AppendAndList", func(t *testing.T, s store.Store) {
		checkEvents(t, s, 0, 10)
		full := newEvent("session.revoked", t0)
		full.ID = 1 << 40 // ignored
		bare := store.Event{Type: "user.updated"}
		empty := newEvent("client.updated", t1)
		empty.Data = []byte{}
		es := appendEvents(t, s, full, bare, empty)
		checkEvents(t, s, 0, 10, es...)
	}},
	{"Paging", func(t *testing.T, s store.Store) {
		var in []store.Event
		for i := range 5 {
			in = append(in, newEvent(fmt.Sprintf("e%d", i), t0.Add(time.Duration(i)*time.Second)))
		}
		es := appendEvents(t, s, in...)
		checkEvents(t, s, 0, 2, es[0], es[1])
		checkEvents(t, s, es[1].ID, 2, es[2], es[3])
		checkEvents(t, s, es[3].ID, 2, es[4])
		checkEvents(t, s, es[4].ID, 2)
		checkEvents(t, s, es[1].ID, 100, es[2:]...)
		checkEvents(t, s, -1, 100, es...)
		// At most limit: none for a limit of zero or less.
		checkEvents(t, s, 0, 0)
		checkEvents(t, s, 0, -1)
	}},
	{"IDsNotReused", func(t *testing.T, s store.Store) {
		// A reader's position stays valid after the newest events are
		// deleted: later events still get greater IDs.
		es := appendEvents(t, s, newEvent("a", t0), newEvent("b", t0), newEvent("c", t0))
		n, err := s.DeleteExpired(t.Context(), t0, t1)
		must(t, "DeleteExpired", err)
		check(t, "DeleteExpired", n, int64(3))
		checkEvents(t, s, 0, 10)
		d := appendEvents(t, s, newEvent("d", t1))[0]
		if d.ID <= es[2].ID {
			t.Errorf("AppendEvent after DeleteExpired: got ID %d, want more than %d", d.ID, es[2].ID)
		}
		checkEvents(t, s, es[2].ID, 10, d)
	}},
}
