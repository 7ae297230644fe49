package storetest

import (
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// tokenLifetime is how long the suite's refresh tokens live.
const tokenLifetime = 30 * 24 * time.Hour

// newToken returns the first token of a family, created at at.
func newToken(hash, family string, at time.Time) store.RefreshToken {
	return store.RefreshToken{
		Hash:      hash,
		FamilyID:  family,
		ClientID:  "backend",
		UserID:    "u1",
		Scopes:    []string{"openid", "offline_access"},
		AuthTime:  at,
		CreatedAt: at,
		ExpiresAt: at.Add(tokenLifetime),
	}
}

// successorOf returns the token that replaces t when it is rotated at at.
func successorOf(t store.RefreshToken, hash string, at time.Time) store.RefreshToken {
	next := newToken(hash, t.FamilyID, at)
	next.AuthTime = t.AuthTime
	return next
}

// rotated returns t as stored once rotated into successor at at.
func rotated(t store.RefreshToken, successor string, at time.Time) store.RefreshToken {
	t.RotatedAt, t.SuccessorHash = &at, successor
	return t
}

// revoked returns t as stored once revoked at at.
func revoked(t store.RefreshToken, at time.Time) store.RefreshToken {
	t.RevokedAt = &at
	return t
}

// createTokens stores ts.
func createTokens(t *testing.T, s store.Store, ts ...store.RefreshToken) {
	t.Helper()
	for _, tok := range ts {
		must(t, "CreateRefreshToken", s.CreateRefreshToken(t.Context(), tok))
	}
}

// checkTokens reports an error unless the store holds each of want.
func checkTokens(t *testing.T, s store.Store, want ...store.RefreshToken) {
	t.Helper()
	for _, w := range want {
		got, err := s.GetRefreshToken(t.Context(), w.Hash)
		if err != nil {
			t.Errorf("GetRefreshToken(%s): got error %v, want nil", w.Hash, err)
			continue
		}
		check(t, "GetRefreshToken("+w.Hash+")", got, w)
	}
}

// checkNoToken reports an error unless the store has no token with hash.
func checkNoToken(t *testing.T, s store.Store, hash string) {
	t.Helper()
	_, err := s.GetRefreshToken(t.Context(), hash)
	checkErr(t, "GetRefreshToken("+hash+")", err, store.ErrNotFound)
}

var tokenCases = []testCase{
	{"CreateAndGet", func(t *testing.T, s store.Store) {
		first := newToken("a", "fam", t0)
		withEverything := rotated(revoked(newToken("b", "fam", t0), t0.Add(2*time.Hour)), "c", t0.Add(time.Hour))
		withEverything.AuthTime = t0.Add(-time.Hour)
		zero := store.RefreshToken{Hash: "z"}
		createTokens(t, s, first, withEverything, zero)
		checkTokens(t, s, first, withEverything, zero)
	}},
	{"CreateDuplicate", func(t *testing.T, s store.Store) {
		a := newToken("a", "fam", t0)
		createTokens(t, s, a)
		err := s.CreateRefreshToken(t.Context(), newToken("a", "other", t0.Add(time.Hour)))
		checkErr(t, "CreateRefreshToken", err, store.ErrAlreadyExists)
		checkTokens(t, s, a)
	}},
	{"GetMissing", func(t *testing.T, s store.Store) {
		createTokens(t, s, newToken("a", "fam", t0))
		checkNoToken(t, s, "fam")
	}},
}
