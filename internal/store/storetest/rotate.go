package storetest

import (
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Times of the rotation tests: the family starts at t0, its first token is
// rotated at t1, and rotateGrace is the grace window they use.
var t1 = t0.Add(time.Minute)

const rotateGrace = 10 * time.Second

var rotateCases = []testCase{
	{"Unknown", func(t *testing.T, s store.Store) {
		a := newToken("a", "fam", t0)
		createTokens(t, s, a)
		_, err := s.RotateRefreshToken(t.Context(), "nope", successorOf(a, "b", t1), t1, rotateGrace)
		checkErr(t, "RotateRefreshToken", err, store.ErrNotFound)
		checkNoToken(t, s, "b")
		checkTokens(t, s, a)
	}},
	{"Revoked", func(t *testing.T, s store.Store) {
		a := revoked(newToken("a", "fam", t0), t0.Add(time.Second))
		createTokens(t, s, a)
		_, err := s.RotateRefreshToken(t.Context(), "a", successorOf(a, "b", t1), t1, rotateGrace)
		checkErr(t, "RotateRefreshToken", err, store.ErrInactive)
		checkNoToken(t, s, "b")
		checkTokens(t, s, a)
	}},
	{"Expiry", func(t *testing.T, s store.Store) {
		tests := []struct {
			name    string
			hash    string
			at      time.Duration // after the token expires
			wantErr error
		}{
			{"OneMillisecondBefore", "a", -time.Millisecond, nil},
			{"AtExpiry", "b", 0, store.ErrInactive},
			{"After", "c", time.Hour, store.ErrInactive},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				tok := newToken(tt.hash, "fam-"+tt.hash, t0)
				createTokens(t, s, tok)
				now := tok.ExpiresAt.Add(tt.at)
				next := successorOf(tok, tt.hash+"-next", now)
				_, err := s.RotateRefreshToken(t.Context(), tok.Hash, next, now, rotateGrace)
				checkErr(t, "RotateRefreshToken", err, tt.wantErr)
				if tt.wantErr != nil {
					checkNoToken(t, s, next.Hash)
					checkTokens(t, s, tok)
				}
			})
		}
	}},
	{"First", func(t *testing.T, s store.Store) {
		a, other := newToken("a", "fam", t0), newToken("x", "other", t0)
		createTokens(t, s, a, other)
		b := successorOf(a, "b", t1)
		rot, err := s.RotateRefreshToken(t.Context(), "a", b, t1, rotateGrace)
		must(t, "RotateRefreshToken", err)
		check(t, "RotateRefreshToken", rot, store.Rotation{Old: a, Successor: b})
		checkTokens(t, s, rotated(a, "b", t1), b, other)
	}},
	{"Chain", func(t *testing.T, s store.Store) {
		a := newToken("a", "fam", t0)
		createTokens(t, s, a)
		b, c := successorOf(a, "b", t1), successorOf(a, "c", t1.Add(time.Hour))
		_, err := s.RotateRefreshToken(t.Context(), "a", b, t1, rotateGrace)
		must(t, "RotateRefreshToken(a)", err)
		rot, err := s.RotateRefreshToken(t.Context(), "b", c, c.CreatedAt, rotateGrace)
		must(t, "RotateRefreshToken(b)", err)
		check(t, "RotateRefreshToken(b)", rot, store.Rotation{Old: b, Successor: c})
		checkTokens(t, s, rotated(a, "b", t1), rotated(b, "c", c.CreatedAt), c)
	}},
	{"ReplayWithinGrace", func(t *testing.T, s store.Store) {
		a := newToken("a", "fam", t0)
		createTokens(t, s, a)
		b := successorOf(a, "b", t1)
		_, err := s.RotateRefreshToken(t.Context(), "a", b, t1, rotateGrace)
		must(t, "RotateRefreshToken", err)
		for _, after := range []time.Duration{0, time.Second, rotateGrace} {
			now := t1.Add(after)
			c := successorOf(a, "c", now) // what the retrying client would get
			rot, err := s.RotateRefreshToken(t.Context(), "a", c, now, rotateGrace)
			must(t, "replayed RotateRefreshToken", err)
			check(t, "replayed RotateRefreshToken after "+after.String(), rot,
				store.Rotation{Old: rotated(a, "b", t1), Successor: b, Replayed: true})
			checkNoToken(t, s, "c")
		}
		checkTokens(t, s, rotated(a, "b", t1), b)
	}},
	{"ReplayAfterGrace", func(t *testing.T, s store.Store) {
		a, other := newToken("a", "fam", t0), newToken("x", "other", t0)
		createTokens(t, s, a, other)
		b := successorOf(a, "b", t1)
		_, err := s.RotateRefreshToken(t.Context(), "a", b, t1, rotateGrace)
		must(t, "RotateRefreshToken", err)
		now := t1.Add(rotateGrace + time.Millisecond)
		_, err = s.RotateRefreshToken(t.Context(), "a", successorOf(a, "c", now), now, rotateGrace)
		checkErr(t, "replayed RotateRefreshToken", err, store.ErrReused)
		checkNoToken(t, s, "c")
		checkTokens(t, s, revoked(rotated(a, "b", t1), now), revoked(b, now), other)

		// Once revoked, the family is inactive, to the thief and the client.
		later := now.Add(time.Second)
		for _, hash := range []string{"a", "b"} {
			_, err = s.RotateRefreshToken(t.Context(), hash, successorOf(a, "d", later), later, rotateGrace)
			checkErr(t, "RotateRefreshToken("+hash+") after reuse", err, store.ErrInactive)
		}
		checkNoToken(t, s, "d")
	}},
	{"ReplayAfterSuccessorRotated", func(t *testing.T, s store.Store) {
		a := newToken("a", "fam", t0)
		createTokens(t, s, a)
		b, c := successorOf(a, "b", t1), successorOf(a, "c", t1.Add(time.Second))
		_, err := s.RotateRefreshToken(t.Context(), "a", b, t1, rotateGrace)
		must(t, "RotateRefreshToken(a)", err)
		_, err = s.RotateRefreshToken(t.Context(), "b", c, c.CreatedAt, rotateGrace)
		must(t, "RotateRefreshToken(b)", err)
		now := t1.Add(2 * time.Second) // within a's grace window
		_, err = s.RotateRefreshToken(t.Context(), "a", successorOf(a, "d", now), now, rotateGrace)
		checkErr(t, "replayed RotateRefreshToken(a)", err, store.ErrReused)
		checkNoToken(t, s, "d")
		checkTokens(t, s,
			revoked(rotated(a, "b", t1), now),
			revoked(rotated(b, "c", c.CreatedAt), now),
			revoked(c, now))
	}},
	{"ReplayAfterSuccessorRevoked", func(t *testing.T, s store.Store) {
		a := rotated(newToken("a", "fam", t0), "b", t1)
		b := revoked(successorOf(a, "b", t1), t1.Add(time.Second))
		createTokens(t, s, a, b)
		now := t1.Add(2 * time.Second)
		_, err := s.RotateRefreshToken(t.Context(), "a", successorOf(a, "c", now), now, rotateGrace)
		checkErr(t, "replayed RotateRefreshToken", err, store.ErrReused)
		checkNoToken(t, s, "c")
		checkTokens(t, s, revoked(a, now), b) // b keeps its first revocation
	}},
	{"ReplayWithoutSuccessor", func(t *testing.T, s store.Store) {
		a := rotated(newToken("a", "fam", t0), "gone", t1)
		createTokens(t, s, a)
		now := t1.Add(time.Second)
		_, err := s.RotateRefreshToken(t.Context(), "a", successorOf(a, "c", now), now, rotateGrace)
		checkErr(t, "replayed RotateRefreshToken", err, store.ErrReused)
		checkNoToken(t, s, "c")
		checkTokens(t, s, revoked(a, now))
	}},
	{"ReplayWithoutGrace", func(t *testing.T, s store.Store) {
		for _, grace := range []time.Duration{0, -time.Second} {
			t.Run(grace.String(), func(t *testing.T) {
				family := "fam" + grace.String()
				a := newToken("a"+family, family, t0)
				createTokens(t, s, a)
				b := successorOf(a, "b"+family, t1)
				_, err := s.RotateRefreshToken(t.Context(), a.Hash, b, t1, grace)
				must(t, "RotateRefreshToken", err)
				_, err = s.RotateRefreshToken(t.Context(), a.Hash, successorOf(a, "c"+family, t1), t1, grace)
				checkErr(t, "replayed RotateRefreshToken", err, store.ErrReused)
				checkTokens(t, s, revoked(rotated(a, b.Hash, t1), t1), revoked(b, t1))
			})
		}
	}},
	{"SuccessorInOtherFamily", func(t *testing.T, s store.Store) {
		a := newToken("a", "fam", t0)
		createTokens(t, s, a)
		_, err := s.RotateRefreshToken(t.Context(), "a", newToken("b", "other", t1), t1, rotateGrace)
		if err == nil {
			t.Errorf("RotateRefreshToken: got error %v, want an error", err)
		}
		checkNoToken(t, s, "b")
		checkTokens(t, s, a)
	}},
	{"SuccessorHashTaken", func(t *testing.T, s store.Store) {
		a, taken := newToken("a", "fam", t0), newToken("b", "fam", t0)
		createTokens(t, s, a, taken)
		_, err := s.RotateRefreshToken(t.Context(), "a", successorOf(a, "b", t1), t1, rotateGrace)
		checkErr(t, "RotateRefreshToken", err, store.ErrAlreadyExists)
		checkTokens(t, s, a, taken) // a is not marked rotated
	}},
}

var revokeCases = []testCase{
	{"Family", func(t *testing.T, s store.Store) {
		a := newToken("a", "fam", t0)
		b := successorOf(a, "b", t1)
		earlier := revoked(newToken("r", "fam", t0), t0.Add(time.Second))
		expired := newToken("e", "fam", t0.Add(-2*tokenLifetime))
		other := newToken("x", "other", t0)
		createTokens(t, s, a, earlier, expired, other)
		_, err := s.RotateRefreshToken(t.Context(), "a", b, t1, rotateGrace)
		must(t, "RotateRefreshToken", err)

		now := t1.Add(time.Hour)
		n, err := s.RevokeRefreshFamily(t.Context(), "fam", now)
		must(t, "RevokeRefreshFamily", err)
		check(t, "RevokeRefreshFamily", n, 3) // a (rotated), b and the expired token
		checkTokens(t, s, revoked(rotated(a, "b", t1), now), revoked(b, now), earlier, revoked(expired, now), other)

		n, err = s.RevokeRefreshFamily(t.Context(), "fam", now.Add(time.Hour))
		must(t, "RevokeRefreshFamily again", err)
		check(t, "RevokeRefreshFamily again", n, 0)
		checkTokens(t, s, revoked(b, now))

		_, err = s.RotateRefreshToken(t.Context(), "b", successorOf(b, "c", now), now, rotateGrace)
		checkErr(t, "RotateRefreshToken after revocation", err, store.ErrInactive)
	}},
	{"Unknown", func(t *testing.T, s store.Store) {
		a := newToken("a", "fam", t0)
		createTokens(t, s, a)
		n, err := s.RevokeRefreshFamily(t.Context(), "nope", t1)
		must(t, "RevokeRefreshFamily", err)
		check(t, "RevokeRefreshFamily", n, 0)
		checkTokens(t, s, a)
	}},
}
