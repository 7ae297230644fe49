package storetest

import (
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

var jtiCases = []testCase{
	{"Use", func(t *testing.T, s store.Store) {
		exp := t0.Add(5 * time.Minute)
		must(t, "UseJTI", s.UseJTI(t.Context(), "j1", exp, t0))
		for _, at := range []time.Time{t0, t0.Add(time.Minute), exp.Add(-time.Millisecond)} {
			checkErr(t, "UseJTI again before it expires", s.UseJTI(t.Context(), "j1", at.Add(time.Hour), at), store.ErrAlreadyExists)
		}
		must(t, "UseJTI(j2)", s.UseJTI(t.Context(), "j2", exp, t0.Add(time.Minute)))
		// Once expired, it may be recorded anew, until its new expiry.
		later := exp.Add(10 * time.Minute)
		must(t, "UseJTI at its expiry", s.UseJTI(t.Context(), "j1", later, exp))
		checkErr(t, "UseJTI after it was recorded anew", s.UseJTI(t.Context(), "j1", later, later.Add(-time.Millisecond)),
			store.ErrAlreadyExists)
		must(t, "UseJTI at its new expiry", s.UseJTI(t.Context(), "j1", later.Add(time.Hour), later))
	}},
}
