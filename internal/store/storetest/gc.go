package storetest

import (
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

var gcCases = []testCase{
	{"DeleteExpired", func(t *testing.T, s store.Store) {
		now := t0.Add(24 * time.Hour)
		eventsBefore := now.Add(-time.Hour)
		// Each kind of record: one that expires at now and one that has
		// expired before (both go), one that expires a millisecond after
		// now (it stays), and records no expiry applies to (they stay).
		codeAt, codeBefore, codeLive := newCode("c-at", now.Add(-codeLifetime)), newCode("c-before", t0), newCode("c-live", now)
		codeLive.ExpiresAt = now.Add(time.Millisecond)
		codeBefore = redeemed(codeBefore, t0, "fam")
		createCodes(t, s, codeAt, codeBefore, codeLive)

		refreshAt, refreshBefore := newToken("r-at", "f1", now.Add(-tokenLifetime)), newToken("r-before", "f2", t0.Add(-tokenLifetime))
		refreshLive := revoked(newToken("r-live", "f3", now.Add(time.Millisecond-tokenLifetime)), t0)
		createTokens(t, s, refreshAt, refreshBefore, refreshLive)

		accessAt, accessLive := newAccessToken("a-at", "f1", now.Add(-time.Hour)), newAccessToken("a-live", "f3", now)
		accessLive = revokedAccess(accessLive, now)
		createAccessTokens(t, s, accessAt, accessLive)

		must(t, "UseJTI", s.UseJTI(t.Context(), "j-at", now, t0))
		must(t, "UseJTI", s.UseJTI(t.Context(), "j-live", now.Add(time.Millisecond), t0))

		noLock := func(int) time.Duration { return 0 }
		for _, th := range []struct {
			key  string
			at   time.Time
			lock func(int) time.Duration
		}{
			{"t-gone", now.Add(-throttleWindow - time.Millisecond), noLock}, // counts no more
			{"t-counts", now.Add(-throttleWindow), noLock},                  // still counts at now
			{"t-locked", now.Add(-2 * throttleWindow), func(int) time.Duration { return 3 * throttleWindow }},
		} {
			_, err := s.RecordLoginFailure(t.Context(), th.key, th.at, throttleWindow, th.lock)
			must(t, "RecordLoginFailure", err)
		}

		events := appendEvents(t, s, newEvent("old", t0), newEvent("at", eventsBefore), newEvent("new", now))

		must(t, "PutConsent", s.PutConsent(t.Context(), "u1", "spa", []string{"openid"}, t0))
		must(t, "CreateUser", s.CreateUser(t.Context(), newUser("u1", "alice")))
		must(t, "CreateClient", s.CreateClient(t.Context(), newClient("spa")))
		key := newKey("k1", t0)
		key.ExpiresAt = ptr(t0)
		must(t, "AddSigningKey", s.AddSigningKey(t.Context(), key))

		n, err := s.DeleteExpired(t.Context(), now, eventsBefore)
		must(t, "DeleteExpired", err)
		// 2 codes, 2 refresh tokens, 1 access token, 1 identifier, 1
		// throttle state and 1 event.
		check(t, "DeleteExpired", n, int64(8))

		redeem(t, s, "c-at", now, "fam", store.AuthCode{}, store.ErrNotFound)
		redeem(t, s, "c-before", now, "fam", store.AuthCode{}, store.ErrNotFound)
		redeem(t, s, "c-live", now, "fam", codeLive, nil)
		checkNoToken(t, s, "r-at")
		checkNoToken(t, s, "r-before")
		checkTokens(t, s, refreshLive)
		_, err = s.GetAccessToken(t.Context(), "a-at")
		checkErr(t, "GetAccessToken(a-at)", err, store.ErrNotFound)
		checkAccessTokens(t, s, accessLive)
		checkErr(t, "UseJTI(j-live)", s.UseJTI(t.Context(), "j-live", now.Add(time.Hour), now), store.ErrAlreadyExists)
		checkThrottle(t, s, store.Throttle{Key: "t-gone"})
		checkThrottle(t, s, store.Throttle{Key: "t-counts", Failures: 1, LastFailure: now.Add(-throttleWindow)})
		checkThrottle(t, s, store.Throttle{Key: "t-locked", Failures: 1, LastFailure: now.Add(-2 * throttleWindow),
			LockedUntil: now.Add(throttleWindow)})
		checkEvents(t, s, 0, 10, events[1:]...)
		_, err = s.GetConsent(t.Context(), "u1", "spa")
		must(t, "GetConsent", err)
		_, err = s.GetUser(t.Context(), "alice")
		must(t, "GetUser", err)
		_, err = s.GetClient(t.Context(), "spa")
		must(t, "GetClient", err)
		keys, err := s.ListSigningKeys(t.Context())
		must(t, "ListSigningKeys", err)
		check(t, "ListSigningKeys", keys, []store.SigningKey{key})

		n, err = s.DeleteExpired(t.Context(), now, eventsBefore)
		must(t, "DeleteExpired again", err)
		check(t, "DeleteExpired again", n, int64(0))
	}},
	{"RedeemedCodes", func(t *testing.T, s store.Store) {
		// A redeemed code is kept while a replay could still revoke what
		// it issued: until eventsBefore passes its expiry and its family
		// has no usable refresh token.
		now := t0.Add(24 * time.Hour)
		eventsBefore := now.Add(-time.Hour)
		old := eventsBefore.Add(-codeLifetime - time.Millisecond) // expires just before eventsBefore
		tests := []struct {
			name    string
			code    store.AuthCode
			refresh []store.RefreshToken
			kept    bool
		}{
			{"unredeemed, expired", newCode("unredeemed", now.Add(-codeLifetime)), nil, false},
			{"redeemed, expired after eventsBefore", redeemed(newCode("recent", eventsBefore.Add(-codeLifetime)), eventsBefore, "f-recent"), nil, true},
			{"redeemed, family gone", redeemed(newCode("gone", old), old, "f-gone"), nil, false},
			{"redeemed, family live", redeemed(newCode("live", old), old, "f-live"),
				[]store.RefreshToken{newToken("r-live", "f-live", old)}, true},
			{"redeemed, family revoked", redeemed(newCode("revoked", old), old, "f-revoked"),
				[]store.RefreshToken{revoked(newToken("r-revoked", "f-revoked", old), old)}, false},
			{"redeemed, family expired", redeemed(newCode("expired", old), old, "f-expired"),
				[]store.RefreshToken{newToken("r-expired", "f-expired", now.Add(-tokenLifetime))}, false},
			{"redeemed, family rotated", redeemed(newCode("rotated", old), old, "f-rotated"), []store.RefreshToken{
				rotated(newToken("r-rotated", "f-rotated", old), "r-successor", old),
				newToken("r-successor", "f-rotated", old)}, true},
		}
		for _, tt := range tests {
			createCodes(t, s, tt.code)
			createTokens(t, s, tt.refresh...)
		}
		_, err := s.DeleteExpired(t.Context(), now, eventsBefore)
		must(t, "DeleteExpired", err)
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if tt.kept {
					redeem(t, s, tt.code.Hash, now, "again", tt.code, store.ErrReused)
				} else {
					redeem(t, s, tt.code.Hash, now, "again", store.AuthCode{}, store.ErrNotFound)
				}
			})
		}
	}},
	{"Empty", func(t *testing.T, s store.Store) {
		n, err := s.DeleteExpired(t.Context(), t0, t0)
		must(t, "DeleteExpired", err)
		check(t, "DeleteExpired", n, int64(0))
	}},
}
