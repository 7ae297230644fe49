package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// joinTokenLifetime is the lifetime of newJoinToken's tokens.
const joinTokenLifetime = time.Hour

// newJoinToken returns an unused token for the service name, created at
// created.
func newJoinToken(hash, name string, created time.Time) store.JoinToken {
	return store.JoinToken{Hash: hash, Name: name, CreatedAt: created, ExpiresAt: created.Add(joinTokenLifetime)}
}

func useJoinToken(t *testing.T, s store.Store, hash string, at time.Time, want store.JoinToken, wantErr error) {
	t.Helper()
	got, err := s.UseJoinToken(t.Context(), hash, at)
	checkErr(t, fmt.Sprintf("UseJoinToken(%s) error", hash), err, wantErr)
	check(t, fmt.Sprintf("UseJoinToken(%s)", hash), got, want)
}

var joinTokenCases = []testCase{
	{"CreateAndGet", func(t *testing.T, s store.Store) {
		a, b := newJoinToken("h1", "orders", t0), newJoinToken("h2", "orders", t0.Add(time.Second))
		b.UsedAt = ptr(t0.Add(2 * time.Second))
		for _, jt := range []store.JoinToken{a, b} {
			must(t, "CreateJoinToken", s.CreateJoinToken(t.Context(), jt))
			got, err := s.GetJoinToken(t.Context(), jt.Hash)
			must(t, "GetJoinToken", err)
			check(t, "GetJoinToken("+jt.Hash+")", got, jt)
		}
		checkErr(t, "CreateJoinToken with a taken hash", s.CreateJoinToken(t.Context(), newJoinToken("h1", "billing", t0)),
			store.ErrAlreadyExists)
		_, err := s.GetJoinToken(t.Context(), "unknown")
		checkErr(t, "GetJoinToken(unknown)", err, store.ErrNotFound)
	}},
	{"UseOnce", func(t *testing.T, s store.Store) {
		jt := newJoinToken("h", "orders", t0)
		must(t, "CreateJoinToken", s.CreateJoinToken(t.Context(), jt))
		at := t0.Add(time.Minute)
		useJoinToken(t, s, "h", at, jt, nil)
		used := jt
		used.UsedAt = ptr(at)
		useJoinToken(t, s, "h", at.Add(time.Second), used, store.ErrReused)
		got, err := s.GetJoinToken(t.Context(), "h")
		must(t, "GetJoinToken after its use", err)
		check(t, "GetJoinToken after its use", got, used)
		useJoinToken(t, s, "unknown", at, store.JoinToken{}, store.ErrNotFound)
	}},
	{"Expired", func(t *testing.T, s store.Store) {
		jt := newJoinToken("h", "orders", t0)
		must(t, "CreateJoinToken", s.CreateJoinToken(t.Context(), jt))
		// Usable until a millisecond before it expires; at its expiry, not.
		useJoinToken(t, s, "h", jt.ExpiresAt, jt, store.ErrInactive)
		got, err := s.GetJoinToken(t.Context(), "h")
		must(t, "GetJoinToken", err)
		check(t, "GetJoinToken after a refused use", got, jt)
		useJoinToken(t, s, "h", jt.ExpiresAt.Add(-time.Millisecond), jt, nil)
	}},
	{"ConcurrentUse", func(t *testing.T, s store.Store) {
		jt := newJoinToken("h", "orders", t0)
		must(t, "CreateJoinToken", s.CreateJoinToken(t.Context(), jt))
		at := t0.Add(time.Second)
		errs := make([]error, racers)
		race(func(i int) { _, errs[i] = s.UseJoinToken(t.Context(), "h", at) })
		counts, other := count(errs, nil, store.ErrReused)
		check(t, "errors other than nil and ErrReused", other, nil)
		check(t, "successes, ErrReused", counts, []int{1, racers - 1})
	}},
	{"DeleteExpired", func(t *testing.T, s store.Store) {
		now := t0.Add(24 * time.Hour)
		at, before, live := newJoinToken("at", "a", now.Add(-joinTokenLifetime)), newJoinToken("before", "b", t0),
			newJoinToken("live", "c", now.Add(time.Millisecond-joinTokenLifetime))
		before.UsedAt = ptr(t0)
		for _, jt := range []store.JoinToken{at, before, live} {
			must(t, "CreateJoinToken", s.CreateJoinToken(t.Context(), jt))
		}
		n, err := s.DeleteExpired(t.Context(), now, t0)
		must(t, "DeleteExpired", err)
		check(t, "DeleteExpired", n, int64(2))
		for _, h := range []string{"at", "before", "live"} {
			_, err := s.GetJoinToken(t.Context(), h)
			want := store.ErrNotFound
			if h == "live" {
				want = nil
			}
			checkErr(t, "GetJoinToken("+h+") after DeleteExpired", err, want)
		}
	}},
}
