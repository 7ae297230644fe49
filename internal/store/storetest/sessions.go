package storetest

import (
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// sessionOf returns the session that newest, the newest token of its family,
// describes.
func sessionOf(newest store.RefreshToken) store.Session {
	return store.Session{
		FamilyID:  newest.FamilyID,
		ClientID:  newest.ClientID,
		UserID:    newest.UserID,
		Scopes:    newest.Scopes,
		AuthTime:  newest.AuthTime,
		LastUsed:  newest.CreatedAt,
		ExpiresAt: newest.ExpiresAt,
		Revoked:   newest.RevokedAt != nil,
	}
}

// checkSessions reports an error unless the user's sessions are want.
func checkSessions(t *testing.T, s store.Store, userID string, want ...store.Session) {
	t.Helper()
	got, err := s.ListSessions(t.Context(), userID)
	if err != nil {
		t.Errorf("ListSessions(%s): got error %v, want nil", userID, err)
		return
	}
	check(t, "ListSessions("+userID+")", got, want)
}

var sessionCases = []testCase{
	{"None", func(t *testing.T, s store.Store) {
		other := newToken("x", "fx", t0)
		other.UserID = "u2"
		createTokens(t, s, other)
		checkSessions(t, s, "u1")
	}},
	{"List", func(t *testing.T, s store.Store) {
		// f1 started at t0 and was refreshed at t1, narrowing its scopes.
		a := newToken("a", "f1", t0)
		b := successorOf(a, "b", t1)
		b.Scopes = []string{"openid"}
		// f2 is the newest login, at another client, and is revoked.
		c := revoked(newToken("c", "f2", t0.Add(time.Hour)), t0.Add(2*time.Hour))
		c.ClientID = "spa"
		// f3 is the oldest and has expired.
		d := newToken("d", "f3", t0.Add(-2*tokenLifetime))
		other := newToken("x", "fx", t0.Add(3*time.Hour))
		other.UserID = "u2"
		createTokens(t, s, a, c, d, other)
		_, err := s.RotateRefreshToken(t.Context(), "a", b, t1, rotateGrace)
		must(t, "RotateRefreshToken", err)
		checkSessions(t, s, "u1", sessionOf(c), sessionOf(b), sessionOf(d))
		checkSessions(t, s, "u2", sessionOf(other))
	}},
	{"Order", func(t *testing.T, s store.Store) {
		// Logins at the same time: the most recently used first, then by
		// family ID in byte order.
		g1, g2, g3, upper := newToken("g1", "g1", t0), newToken("g2", "g2", t0), newToken("g3", "g3", t0), newToken("G", "G", t0)
		createTokens(t, s, g3, g2, upper, g1)
		g2next := successorOf(g2, "g2next", t1)
		_, err := s.RotateRefreshToken(t.Context(), "g2", g2next, t1, rotateGrace)
		must(t, "RotateRefreshToken", err)
		checkSessions(t, s, "u1", sessionOf(g2next), sessionOf(upper), sessionOf(g1), sessionOf(g3))
	}},
	{"NewestToken", func(t *testing.T, s store.Store) {
		// Rotated in the instant it was created: the successor, not rotated,
		// describes the session, though its hash sorts first.
		a := newToken("a", "f", t0)
		next := successorOf(a, "0", t0)
		next.Scopes = []string{"openid"}
		createTokens(t, s, a)
		_, err := s.RotateRefreshToken(t.Context(), "a", next, t0, rotateGrace)
		must(t, "RotateRefreshToken", err)
		checkSessions(t, s, "u1", sessionOf(next))
	}},
	{"AfterRevocation", func(t *testing.T, s store.Store) {
		a, b := newToken("a", "f1", t0), newToken("b", "f2", t1)
		createTokens(t, s, a, b)
		_, err := s.RevokeRefreshFamily(t.Context(), "f1", t1)
		must(t, "RevokeRefreshFamily", err)
		checkSessions(t, s, "u1", sessionOf(b), sessionOf(revoked(a, t1)))
	}},
}

var revokeUserCases = []testCase{
	{"Sessions", func(t *testing.T, s store.Store) {
		a := newToken("a", "f1", t0)
		b := successorOf(a, "b", t1)
		gone := revoked(newToken("r", "f2", t0), t0.Add(time.Second)) // revoked before
		part := revoked(newToken("p1", "f3", t0), t0.Add(time.Second))
		rest := newToken("p2", "f3", t0) // the rest of a partly revoked family
		expired := newToken("e", "f4", t0.Add(-2*tokenLifetime))
		other := newToken("x", "fx", t0)
		other.UserID = "u2"
		createTokens(t, s, a, gone, part, rest, expired, other)
		_, err := s.RotateRefreshToken(t.Context(), "a", b, t1, rotateGrace)
		must(t, "RotateRefreshToken", err)

		now := t1.Add(time.Hour)
		families, err := s.RevokeUserSessions(t.Context(), "u1", now)
		must(t, "RevokeUserSessions", err)
		check(t, "RevokeUserSessions", families, []string{"f1", "f3", "f4"})
		checkTokens(t, s, revoked(rotated(a, "b", t1), now), revoked(b, now), gone, part, revoked(rest, now),
			revoked(expired, now), other)

		families, err = s.RevokeUserSessions(t.Context(), "u1", now.Add(time.Hour))
		must(t, "RevokeUserSessions again", err)
		check(t, "RevokeUserSessions again", families, nil)
		checkTokens(t, s, revoked(b, now))

		_, err = s.RotateRefreshToken(t.Context(), "b", successorOf(b, "c", now), now, rotateGrace)
		checkErr(t, "RotateRefreshToken after revocation", err, store.ErrInactive)
	}},
	{"Unknown", func(t *testing.T, s store.Store) {
		a := newToken("a", "f1", t0)
		createTokens(t, s, a)
		families, err := s.RevokeUserSessions(t.Context(), "nobody", t1)
		must(t, "RevokeUserSessions", err)
		check(t, "RevokeUserSessions", families, nil)
		checkTokens(t, s, a)
	}},
}
