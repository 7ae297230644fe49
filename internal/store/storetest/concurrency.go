package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

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
	{"RevokeUserSessionsWhileRotating", func(t *testing.T, s store.Store) {
		// Like RotateWhileRevoking, with one family per caller and one
		// caller revoking all of the user's sessions.
		heads := make([]store.RefreshToken, racers-1)
		for i := range heads {
			heads[i] = newToken(fmt.Sprintf("h%02d", i), fmt.Sprintf("f%02d", i), t0)
		}
		createTokens(t, s, heads...)
		errs := make([]error, racers)
		race(func(i int) {
			if i == len(heads) {
				_, errs[i] = s.RevokeUserSessions(t.Context(), "u1", t1)
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
					t.Errorf("token %s after the user's sessions were revoked: got RevokedAt nil, want set", hash)
				}
			}
		}
	}},
	{"RedeemAuthCode", func(t *testing.T, s store.Store) {
		c := newCode("c", t0)
		createCodes(t, s, c)
		at := t0.Add(time.Second)
		codes := make([]store.AuthCode, racers)
		errs := make([]error, racers)
		race(func(i int) {
			codes[i], errs[i] = s.RedeemAuthCode(t.Context(), "c", at, fmt.Sprintf("fam%02d", i))
		})
		counts, other := count(errs, nil, store.ErrReused)
		check(t, "errors other than nil and ErrReused", other, nil)
		check(t, "successes, ErrReused", counts, []int{1, racers - 1})
		winner := slices.IndexFunc(errs, func(err error) bool { return err == nil })
		if winner < 0 {
			return
		}
		check(t, "RedeemAuthCode that succeeded", codes[winner], c)
		want := redeemed(c, at, fmt.Sprintf("fam%02d", winner))
		for i, got := range codes {
			if i != winner {
				check(t, fmt.Sprintf("RedeemAuthCode #%d", i), got, want)
			}
		}
	}},
	{"RecordLoginFailure", func(t *testing.T, s store.Store) {
		throttles := make([]store.Throttle, racers)
		errs := make([]error, racers)
		race(func(i int) {
			throttles[i], errs[i] = s.RecordLoginFailure(t.Context(), "user:alice", t0, throttleWindow,
				func(int) time.Duration { return 0 })
		})
		_, other := count(errs, nil)
		check(t, "RecordLoginFailure errors", other, nil)
		// Each caller saw a count of its own.
		got := make([]int, racers)
		want := make([]int, racers)
		for i, th := range throttles {
			got[i], want[i] = th.Failures, i+1
		}
		slices.Sort(got)
		check(t, "failures returned", got, want)
		checkThrottle(t, s, store.Throttle{Key: "user:alice", Failures: racers, LastFailure: t0})
	}},
	{"AppendEvent", func(t *testing.T, s store.Store) {
		ids := make([]int64, racers)
		errs := make([]error, racers)
		race(func(i int) {
			ids[i], errs[i] = s.AppendEvent(t.Context(), newEvent(fmt.Sprintf("e%02d", i), t0))
		})
		_, other := count(errs, nil)
		check(t, "AppendEvent errors", other, nil)
		got, err := s.ListEvents(t.Context(), 0, 2*racers)
		must(t, "ListEvents", err)
		check(t, "events listed", len(got), racers)
		for i, e := range got {
			if i > 0 && e.ID <= got[i-1].ID {
				t.Errorf("ListEvents[%d]: got ID %d after %d, want a greater one", i, e.ID, got[i-1].ID)
			}
			var n int
			if _, err := fmt.Sscanf(e.Type, "e%d", &n); err != nil || n < 0 || n >= racers {
				t.Errorf("ListEvents[%d]: got type %q, want one appended", i, e.Type)
				continue
			}
			check(t, fmt.Sprintf("ID of %s", e.Type), e.ID, ids[n])
		}
	}},
	{"FollowEvents", func(t *testing.T, s store.Store) {
		// A reader following the log while events are appended sees every
		// one: no event commits with an ID below one already visible.
		ids := make([]int64, racers)
		errs := make([]error, racers)
		done := make(chan struct{})
		seen := make(chan []int64)
		go func() {
			var got []int64
			var after int64
			for finished := false; ; {
				select {
				case <-done:
					finished = true
				default:
				}
				es, err := s.ListEvents(t.Context(), after, racers)
				if err != nil {
					t.Errorf("ListEvents: got error %v, want nil", err)
					break
				}
				for _, e := range es {
					got, after = append(got, e.ID), e.ID
				}
				if finished && len(es) == 0 {
					break
				}
			}
			seen <- got
		}()
		race(func(i int) {
			ids[i], errs[i] = s.AppendEvent(t.Context(), newEvent(fmt.Sprintf("e%02d", i), t0))
		})
		close(done)
		got := <-seen
		_, other := count(errs, nil)
		check(t, "AppendEvent errors", other, nil)
		slices.Sort(ids)
		check(t, "IDs the reader saw", got, ids)
	}},
	{"UseJTI", func(t *testing.T, s store.Store) {
		errs := make([]error, racers)
		race(func(i int) {
			errs[i] = s.UseJTI(t.Context(), "jti-1", t1, t0)
		})
		counts, other := count(errs, nil, store.ErrAlreadyExists)
		check(t, "errors other than nil and ErrAlreadyExists", other, nil)
		check(t, "successes, ErrAlreadyExists", counts, []int{1, racers - 1})
	}},
	{"UseExpiredJTI", func(t *testing.T, s store.Store) {
		must(t, "UseJTI", s.UseJTI(t.Context(), "jti-1", t0, t0.Add(-time.Minute)))
		errs := make([]error, racers)
		race(func(i int) {
			errs[i] = s.UseJTI(t.Context(), "jti-1", t1, t0)
		})
		counts, other := count(errs, nil, store.ErrAlreadyExists)
		check(t, "errors other than nil and ErrAlreadyExists", other, nil)
		check(t, "successes, ErrAlreadyExists", counts, []int{1, racers - 1})
	}},
	{"PutConsent", func(t *testing.T, s store.Store) {
		errs := make([]error, racers)
		race(func(i int) {
			errs[i] = s.PutConsent(t.Context(), "u1", "spa", []string{fmt.Sprintf("s%02d", i)}, t0)
		})
		_, other := count(errs, nil)
		check(t, "PutConsent errors", other, nil)
		got, err := s.GetConsent(t.Context(), "u1", "spa")
		must(t, "GetConsent", err)
		if len(got) != 1 {
			t.Errorf("GetConsent: got %q, want one of the scopes put", got)
		}
	}},
}
