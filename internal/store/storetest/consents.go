package storetest

import (
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

var consentCases = []testCase{
	{"PutAndGet", func(t *testing.T, s store.Store) {
		_, err := s.GetConsent(t.Context(), "u1", "spa")
		checkErr(t, "GetConsent before PutConsent", err, store.ErrNotFound)
		scopes := []string{"openid", "profile"}
		must(t, "PutConsent", s.PutConsent(t.Context(), "u1", "spa", scopes, t0))
		got, err := s.GetConsent(t.Context(), "u1", "spa")
		must(t, "GetConsent", err)
		check(t, "GetConsent", got, scopes)
		// A consent is one user's, to one client.
		_, err = s.GetConsent(t.Context(), "u1", "backend")
		checkErr(t, "GetConsent(u1, backend)", err, store.ErrNotFound)
		_, err = s.GetConsent(t.Context(), "u2", "spa")
		checkErr(t, "GetConsent(u2, spa)", err, store.ErrNotFound)
	}},
	{"Replace", func(t *testing.T, s store.Store) {
		must(t, "PutConsent", s.PutConsent(t.Context(), "u1", "spa", []string{"openid", "profile", "email"}, t0))
		must(t, "PutConsent(u2)", s.PutConsent(t.Context(), "u2", "spa", []string{"openid"}, t0))
		must(t, "PutConsent again", s.PutConsent(t.Context(), "u1", "spa", []string{"openid", "offline_access"}, t1))
		got, err := s.GetConsent(t.Context(), "u1", "spa")
		must(t, "GetConsent", err)
		check(t, "GetConsent after PutConsent again", got, []string{"openid", "offline_access"})
		got, err = s.GetConsent(t.Context(), "u2", "spa")
		must(t, "GetConsent(u2)", err)
		check(t, "GetConsent(u2)", got, []string{"openid"})
	}},
	{"NoScopes", func(t *testing.T, s store.Store) {
		// A consent to nothing is still a consent, not ErrNotFound.
		must(t, "PutConsent", s.PutConsent(t.Context(), "u1", "spa", nil, t0))
		got, err := s.GetConsent(t.Context(), "u1", "spa")
		must(t, "GetConsent", err)
		check(t, "GetConsent", got, nil)
		must(t, "PutConsent", s.PutConsent(t.Context(), "u1", "spa", []string{"openid"}, t0.Add(time.Second)))
		must(t, "PutConsent", s.PutConsent(t.Context(), "u1", "spa", []string{}, t1))
		got, err = s.GetConsent(t.Context(), "u1", "spa")
		must(t, "GetConsent", err)
		check(t, "GetConsent", got, nil)
	}},
}
