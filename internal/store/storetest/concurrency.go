package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// racers is how many goroutines the concurrency tests start at once.
const racers = 50

// race calls fn(i) for i in [0, racers) on as many goroutines, released
// together, and returns once every call has returned.
func race(fn func(i int)) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			<-start
			fn(i)
		})
	}
	close(start)
	wg.Wait()
}

// count returns how many of errs match each of wants, and how many match none.
func count(errs []error, wants ...error) (counts []int, other []error) {
	counts = make([]int, len(wants))
next:
	for _, err := range errs {
		for i, want := range wants {
			if errors.Is(err, want) {
				counts[i]++
				continue next
			}
		}
		other = append(other, err)
	}
	return counts, other
}

var concurrencyCases = []testCase{
	{"RotateWithinGrace", func(t *testing.T, s store.Store) {
		// Every caller presents a and derives the same successor from it, as a
		// client retrying one refresh across several replicas would.
		a := newToken("a", "fam", t0)
		createTokens(t, s, a)
		b := successorOf(a, "b", t1)
		rots := make([]store.Rotation, racers)
		errs := make([]error, racers)
		race(func(i int) {
			rots[i], errs[i] = s.RotateRefreshToken(t.Context(), "a", b, t1, rotateGrace)
		})
		fresh := 0
		for i, rot := range rots {
			if errs[i] != nil {
				t.Errorf("RotateRefreshToken #%d: got error %v, want nil", i, errs[i])
				continue
			}
			if !rot.Replayed {
				fresh++
			}
			check(t, fmt.Sprintf("RotateRefreshToken #%d successor", i), rot.Successor, b)
		}
		check(t, "rotations not replayed", fresh, 1)
		checkTokens(t, s, rotated(a, "b", t1), b)
	}},
	{"RotateWithoutGrace", func(t *testing.T, s store.Store) {
		a := newToken("a", "fam", t0)
		createTokens(t, s, a)
		b := successorOf(a, "b", t1)
		errs := make([]error, racers)
		race(func(i int) {
			_, errs[i] = s.RotateRefreshToken(t.Context(), "a", b, t1, 0)
		})
		// One caller rotates a and the next detects reuse and revokes the
		// family; the rest find a revoked.
		counts, other := count(errs, nil, store.ErrReused, store.ErrInactive)
		check(t, "errors other than nil, ErrReused and ErrInactive", other, nil)
		check(t, "successes, ErrReused, ErrInactive", counts, []int{1, 1, racers - 2})
		checkTokens(t, s, revoked(rotated(a, "b", t1), t1), revoked(b, t1))
	}},
	{"RotateWhileRevoking", func(t *testing.T, s store.Store) {
		// The family has many active tokens; all but one of the callers
		// rotate one each while the last revokes the family. Whatever the
		// order, no token of the family may be active afterwards: a successor
		// stored concurrently with the revocation must not escape it.
		heads := make([]store.RefreshToken, racers-1)
		for i := range heads {
			heads[i] = newToken(fmt.Sprintf("h%02d", i), "fam", t0)
		}
		createTokens(t, s, heads...)
		errs := make([]error, racers)
		race(func(i int) {
			if i == len(heads) {
				_, errs[i] = s.RevokeRefreshFamily(t.Context(), "fam", t1)
				return
			}
			next := successorOf(heads[i], fmt.Sprintf("n%02d", i), t1)
			_, errs[i] = s.RotateRefreshToken(t.Context(), heads[i].Hash, next, t1, rotateGrace)
		})
		_, other := count(errs, nil, store.ErrInactive)
		check(t, "errors other than nil and ErrInactive", other, nil)
		for i := range heads {
			for _, hash := range []string{fmt.Sprintf("h%02d", i), fmt.Sprintf("n%02d", i)} {
				tok, err := s.GetRefreshToken(t.Context(), hash)
				if err == nil && tok.RevokedAt == nil {
					t.Errorf("token %s after its family's revocation: got RevokedAt nil, want set", hash)
				}
			}
		}
	}},
	{"UpdateUser", func(t *testing.T, s store.Store) {
		must(t, "CreateUser", s.CreateUser(t.Context(), store.User{ID: "u1", Username: "alice"}))
		errs := make([]error, racers)
		race(func(i int) {
			_, errs[i] = s.UpdateUser(t.Context(), "alice", func(u *store.User) error {
				u.Roles = append(u.Roles, fmt.Sprintf("role%02d", i))
				return nil
			})
		})
		_, other := count(errs, nil)
		check(t, "UpdateUser errors", other, nil)
		got, err := s.GetUser(t.Context(), "alice")
		must(t, "GetUser", err)
		want := make([]string, racers)
		for i := range want {
			want[i] = fmt.Sprintf("role%02d", i)
		}
		slices.Sort(got.Roles)
		check(t, "roles after concurrent updates", got.Roles, want)
	}},
	{"CreateUser", func(t *testing.T, s store.Store) {
		errs := make([]error, racers)
		race(func(i int) {
			errs[i] = s.CreateUser(t.Context(), newUser(fmt.Sprintf("u%d", i), "alice"))
		})
		counts, other := count(errs, nil, store.ErrAlreadyExists)
		check(t, "errors other than nil and ErrAlreadyExists", other, nil)
		check(t, "successes, ErrAlreadyExists", counts, []int{1, racers - 1})
	}},
}
