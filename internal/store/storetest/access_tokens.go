package storetest

import (
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// newAccessToken returns an opaque access token of the session family,
// created at at. Its claims are not in canonical JSON form: a store keeps
// them byte for byte.
func newAccessToken(hash, family string, at time.Time) store.AccessToken {
	return store.AccessToken{
		Hash:      hash,
		ClientID:  "backend",
		Subject:   "u1",
		FamilyID:  family,
		Claims:    []byte(`{"sub":"u1",  "scope":"openid profile", "aud":["https://api.example"], "n":1.50}`),
		CreatedAt: at,
		ExpiresAt: at.Add(time.Hour),
	}
}

// revokedAccess returns t as stored once revoked at at.
func revokedAccess(t store.AccessToken, at time.Time) store.AccessToken {
	t.RevokedAt = &at
	return t
}

// createAccessTokens stores ts.
func createAccessTokens(t *testing.T, s store.Store, ts ...store.AccessToken) {
	t.Helper()
	for _, tok := range ts {
		must(t, "CreateAccessToken", s.CreateAccessToken(t.Context(), tok))
	}
}

// checkAccessTokens reports an error unless the store holds each of want,
// with Claims nil exactly where want's are.
func checkAccessTokens(t *testing.T, s store.Store, want ...store.AccessToken) {
	t.Helper()
	for _, w := range want {
		got, err := s.GetAccessToken(t.Context(), w.Hash)
		if err != nil {
			t.Errorf("GetAccessToken(%s): got error %v, want nil", w.Hash, err)
			continue
		}
		check(t, "GetAccessToken("+w.Hash+")", got, w)
		checkNil(t, "GetAccessToken("+w.Hash+") Claims", got.Claims, w.Claims)
	}
}

var accessTokenCases = []testCase{
	{"CreateAndGet", func(t *testing.T, s store.Store) {
		session := newAccessToken("a", "fam", t0)
		revokedToken := revokedAccess(newAccessToken("r", "fam", t0), t0.Add(time.Minute))
		client := newAccessToken("c", "", t0) // client_credentials: no session
		client.Subject = "backend"
		noClaims := newAccessToken("n", "fam", t0)
		noClaims.Claims = nil
		emptyClaims := newAccessToken("e", "fam", t0)
		emptyClaims.Claims = []byte{}
		zero := store.AccessToken{Hash: "z"}
		all := []store.AccessToken{session, revokedToken, client, noClaims, emptyClaims, zero}
		createAccessTokens(t, s, all...)
		checkAccessTokens(t, s, all...)
	}},
	{"CreateDuplicate", func(t *testing.T, s store.Store) {
		a := newAccessToken("a", "fam", t0)
		createAccessTokens(t, s, a)
		err := s.CreateAccessToken(t.Context(), newAccessToken("a", "other", t1))
		checkErr(t, "CreateAccessToken", err, store.ErrAlreadyExists)
		checkAccessTokens(t, s, a)
	}},
	{"GetMissing", func(t *testing.T, s store.Store) {
		createAccessTokens(t, s, newAccessToken("a", "fam", t0))
		_, err := s.GetAccessToken(t.Context(), "fam")
		checkErr(t, "GetAccessToken(fam)", err, store.ErrNotFound)
	}},
	{"Revoke", func(t *testing.T, s store.Store) {
		a, b := newAccessToken("a", "fam", t0), newAccessToken("b", "fam", t0)
		createAccessTokens(t, s, a, b)
		must(t, "RevokeAccessToken", s.RevokeAccessToken(t.Context(), "a", t1))
		checkAccessTokens(t, s, revokedAccess(a, t1), b)
		// Revoking again keeps the first time.
		must(t, "RevokeAccessToken again", s.RevokeAccessToken(t.Context(), "a", t1.Add(time.Hour)))
		checkAccessTokens(t, s, revokedAccess(a, t1))
		checkErr(t, "RevokeAccessToken(nope)", s.RevokeAccessToken(t.Context(), "nope", t1), store.ErrNotFound)
	}},
	{"RevokeFamily", func(t *testing.T, s store.Store) {
		a1, a2 := newAccessToken("a1", "fam", t0), newAccessToken("a2", "fam", t0.Add(time.Second))
		earlier := revokedAccess(newAccessToken("a3", "fam", t0), t0.Add(time.Minute))
		expired := newAccessToken("a4", "fam", t0.Add(-24*time.Hour))
		other := newAccessToken("b", "other", t0)
		client := newAccessToken("c", "", t0)
		createAccessTokens(t, s, a1, a2, earlier, expired, other, client)

		n, err := s.RevokeFamilyAccessTokens(t.Context(), "fam", t1)
		must(t, "RevokeFamilyAccessTokens", err)
		check(t, "RevokeFamilyAccessTokens", n, 3) // a1, a2 and the expired token
		checkAccessTokens(t, s, revokedAccess(a1, t1), revokedAccess(a2, t1), earlier, revokedAccess(expired, t1),
			other, client)

		n, err = s.RevokeFamilyAccessTokens(t.Context(), "fam", t1.Add(time.Hour))
		must(t, "RevokeFamilyAccessTokens again", err)
		check(t, "RevokeFamilyAccessTokens again", n, 0)
		checkAccessTokens(t, s, revokedAccess(a1, t1))

		// An empty family names no session: the tokens without one stay.
		for _, family := range []string{"", "nope"} {
			n, err = s.RevokeFamilyAccessTokens(t.Context(), family, t1)
			must(t, "RevokeFamilyAccessTokens("+family+")", err)
			check(t, "RevokeFamilyAccessTokens("+family+")", n, 0)
		}
		checkAccessTokens(t, s, other, client)
	}},
}
