package storetest

import (
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// codeLifetime is how long the suite's authorization codes live.
const codeLifetime = time.Minute

// newCode returns an authorization code with every field but the
// redemption set, created at at.
func newCode(hash string, at time.Time) store.AuthCode {
	return store.AuthCode{
		Hash:                hash,
		ClientID:            "spa",
		UserID:              "u1",
		RedirectURI:         "https://app.example/callback",
		Scopes:              []string{"openid", "profile"},
		Nonce:               "n-0S6_WzA2Mj",
		CodeChallenge:       "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
		CodeChallengeMethod: "S256",
		AuthTime:            at.Add(-time.Second),
		CreatedAt:           at,
		ExpiresAt:           at.Add(codeLifetime),
	}
}

// redeemed returns c as stored once redeemed at at for family.
func redeemed(c store.AuthCode, at time.Time, family string) store.AuthCode {
	c.RedeemedAt, c.FamilyID = &at, family
	return c
}

// createCodes stores cs.
func createCodes(t *testing.T, s store.Store, cs ...store.AuthCode) {
	t.Helper()
	for _, c := range cs {
		must(t, "CreateAuthCode", s.CreateAuthCode(t.Context(), c))
	}
}

// redeem redeems the code with hash at at for family and reports an error
// unless that returns an error matching wantErr and, with a nil error or
// store.ErrReused, the code want (with other errors, the code is unspecified).
func redeem(t *testing.T, s store.Store, hash string, at time.Time, family string, want store.AuthCode, wantErr error) {
	t.Helper()
	got, err := s.RedeemAuthCode(t.Context(), hash, at, family)
	switch {
	case wantErr == nil && err != nil:
		t.Errorf("RedeemAuthCode(%s): got error %v, want nil", hash, err)
	case wantErr != nil:
		checkErr(t, "RedeemAuthCode("+hash+")", err, wantErr)
	}
	if wantErr == nil || wantErr == store.ErrReused {
		check(t, "RedeemAuthCode("+hash+")", got, want)
	}
}

var codeCases = []testCase{
	{"Redeem", func(t *testing.T, s store.Store) {
		c, other := newCode("c", t0), newCode("d", t0)
		createCodes(t, s, c, other)
		at := t0.Add(time.Second)
		redeem(t, s, "c", at, "fam1", c, nil) // the code as stored before
		// Every later redemption is reuse, and names what the first issued.
		for _, family := range []string{"fam2", "fam1", ""} {
			redeem(t, s, "c", at.Add(time.Second), family, redeemed(c, at, "fam1"), store.ErrReused)
		}
		redeem(t, s, "d", at, "fam3", other, nil)
	}},
	{"ZeroValues", func(t *testing.T, s store.Store) {
		c := store.AuthCode{Hash: "z", ExpiresAt: t0}
		createCodes(t, s, c)
		at := t0.Add(-time.Millisecond)
		redeem(t, s, "z", at, "", c, nil)
		redeem(t, s, "z", at, "fam", redeemed(c, at, ""), store.ErrReused)
	}},
	{"CreateRedeemed", func(t *testing.T, s store.Store) {
		c := redeemed(newCode("c", t0), t0.Add(time.Second), "fam1")
		createCodes(t, s, c)
		redeem(t, s, "c", t0.Add(2*time.Second), "fam2", c, store.ErrReused)
	}},
	{"CreateDuplicate", func(t *testing.T, s store.Store) {
		c := newCode("c", t0)
		createCodes(t, s, c)
		other := newCode("c", t1)
		other.ClientID = "evil"
		checkErr(t, "CreateAuthCode", s.CreateAuthCode(t.Context(), other), store.ErrAlreadyExists)
		redeem(t, s, "c", t0, "fam", c, nil)
	}},
	{"Unknown", func(t *testing.T, s store.Store) {
		createCodes(t, s, newCode("c", t0))
		redeem(t, s, "nope", t0, "fam", store.AuthCode{}, store.ErrNotFound)
	}},
	{"Expiry", func(t *testing.T, s store.Store) {
		tests := []struct {
			name    string
			at      time.Duration // after the code expires
			wantErr error
		}{
			{"OneMillisecondBefore", -time.Millisecond, nil},
			{"AtExpiry", 0, store.ErrInactive},
			{"After", time.Hour, store.ErrInactive},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				c := newCode("c-"+tt.name, t0)
				createCodes(t, s, c)
				redeem(t, s, c.Hash, c.ExpiresAt.Add(tt.at), "fam", c, tt.wantErr)
				if tt.wantErr != nil {
					// The refused redemption left the code unredeemed.
					redeem(t, s, c.Hash, t0, "fam", c, nil)
				}
			})
		}
	}},
	{"ReplayAfterExpiry", func(t *testing.T, s store.Store) {
		// Reuse comes first: a redeemed code presented again is reuse
		// however late, so the replay can revoke what the first
		// redemption issued (RFC 6749 §4.1.2).
		c := newCode("c", t0)
		createCodes(t, s, c)
		redeem(t, s, "c", t0, "fam", c, nil)
		for _, at := range []time.Time{c.ExpiresAt, c.ExpiresAt.Add(time.Millisecond), c.ExpiresAt.Add(30 * 24 * time.Hour)} {
			redeem(t, s, "c", at, "fam2", redeemed(c, t0, "fam"), store.ErrReused)
		}
	}},
}
