package storetest

import (
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// newKey returns an ES256 key created and activated at at.
func newKey(id string, at time.Time) store.SigningKey {
	return store.SigningKey{
		ID:            id,
		Algorithm:     "ES256",
		PublicJWK:     []byte(`{"kty":"EC","crv":"P-256","kid":"` + id + `","x":"eA","y":"eQ"}`),
		SealedPrivate: []byte{0x00, 0x01, 0xfe, 0xff, 's', 'e', 'a', 'l', 'e', 'd'},
		CreatedAt:     at,
		ActiveAt:      at,
	}
}

// ptr returns a pointer to t.
func ptr(t time.Time) *time.Time {
	return &t
}

var keyCases = []testCase{
	{"AddAndList", func(t *testing.T, s store.Store) {
		got, err := s.ListSigningKeys(t.Context())
		must(t, "ListSigningKeys", err)
		check(t, "ListSigningKeys of none", got, nil)

		oldest := newKey("kc", t0)
		oldest.RetiredAt, oldest.ExpiresAt = ptr(t0.Add(24*time.Hour)), ptr(t0.Add(48*time.Hour))
		current := newKey("ka", t0.Add(24*time.Hour))
		current.Algorithm = "EdDSA"
		next := newKey("kd", t0.Add(48*time.Hour))
		next.ActiveAt = t0.Add(72 * time.Hour)
		empty := store.SigningKey{ID: "kb", CreatedAt: t0.Add(96 * time.Hour)}
		// Insert them in neither CreatedAt nor ID order.
		for _, k := range []store.SigningKey{next, oldest, empty, current} {
			must(t, "AddSigningKey", s.AddSigningKey(t.Context(), k))
		}
		got, err = s.ListSigningKeys(t.Context())
		must(t, "ListSigningKeys", err)
		check(t, "ListSigningKeys", got, []store.SigningKey{oldest, current, next, empty})
	}},
	{"AddDuplicate", func(t *testing.T, s store.Store) {
		k := newKey("k1", t0)
		must(t, "AddSigningKey", s.AddSigningKey(t.Context(), k))
		checkErr(t, "AddSigningKey", s.AddSigningKey(t.Context(), newKey("k1", t1)), store.ErrAlreadyExists)
		got, err := s.ListSigningKeys(t.Context())
		must(t, "ListSigningKeys", err)
		check(t, "ListSigningKeys", got, []store.SigningKey{k})
	}},
	{"Update", func(t *testing.T, s store.Store) {
		k := newKey("k1", t0)
		must(t, "AddSigningKey", s.AddSigningKey(t.Context(), k))
		want := k
		want.RetiredAt, want.ExpiresAt = ptr(t1), ptr(t1.Add(time.Hour))
		got, err := s.UpdateSigningKey(t.Context(), "k1", func(k *store.SigningKey) error {
			k.ID, k.RetiredAt, k.ExpiresAt = "k2", want.RetiredAt, want.ExpiresAt // the ID stays
			return nil
		})
		must(t, "UpdateSigningKey", err)
		check(t, "UpdateSigningKey", got, want)
		list, err := s.ListSigningKeys(t.Context())
		must(t, "ListSigningKeys", err)
		check(t, "ListSigningKeys after UpdateSigningKey", list, []store.SigningKey{want})

		want.RetiredAt, want.ExpiresAt = nil, nil
		got, err = s.UpdateSigningKey(t.Context(), "k1", func(k *store.SigningKey) error {
			k.RetiredAt, k.ExpiresAt = nil, nil
			return nil
		})
		must(t, "UpdateSigningKey to clear times", err)
		check(t, "UpdateSigningKey to clear times", got, want)
	}},
	{"UpdateRefused", func(t *testing.T, s store.Store) {
		k := newKey("k1", t0)
		must(t, "AddSigningKey", s.AddSigningKey(t.Context(), k))
		_, err := s.UpdateSigningKey(t.Context(), "k1", func(k *store.SigningKey) error {
			k.RetiredAt = ptr(t1)
			return errUpdate
		})
		checkErr(t, "UpdateSigningKey", err, errUpdate)
		got, err := s.ListSigningKeys(t.Context())
		must(t, "ListSigningKeys", err)
		check(t, "ListSigningKeys after refused UpdateSigningKey", got, []store.SigningKey{k})
	}},
	{"UpdateMissing", func(t *testing.T, s store.Store) {
		called := false
		_, err := s.UpdateSigningKey(t.Context(), "nope", func(*store.SigningKey) error {
			called = true
			return nil
		})
		checkErr(t, "UpdateSigningKey", err, store.ErrNotFound)
		check(t, "update called", called, false)
	}},
}
