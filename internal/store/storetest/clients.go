package storetest

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// newClient returns a confidential client with every field set.
func newClient(id string) store.Client {
	return store.Client{
		ID:           id,
		SecretHash:   "hmac-sha256:c2VjcmV0aGFzaA",
		Grants:       []string{"authorization_code", "refresh_token"},
		Scopes:       []string{"openid", "profile", "offline_access"},
		RedirectURIs: []string{"https://app.example/callback", "http://127.0.0.1:8080/cb"},
		// Exactly as registered: no normalization of case or trailing slash.
		PostLogoutRedirectURIs: []string{"https://app.example/signed-out", "https://App.example/bye/"},
		Audience:               []string{"https://api.example"},
		AccessTokenFormat:      store.FormatOpaque,
		AuthMethod:             store.AuthPrivateKeyJWT,
		JWKS:                   []byte(`{"keys":[{"kty":"EC","crv":"P-256","kid":"` + id + `","x":"eA","y":"eQ"}]}`),
		AccessTokenTTL:         5 * time.Minute,
		RefreshTokenTTL:        14 * 24 * time.Hour,
		// Not a whole number of microseconds: durations keep every nanosecond.
		RefreshAbsoluteTTL: 90*24*time.Hour + 1500*time.Nanosecond,
		ExchangeAudiences:  []string{"https://billing.example", "https://orders.example"},
		TrustedProxy:       true,
		CertificateBound:   true,
		DisabledAt:         ptr(t0.Add(-time.Minute)), // and enabled since
		CreatedAt:          t0,
		UpdatedAt:          t0.Add(time.Second),
	}
}

// checkClient reports an error unless got equals want, and unless JWKS is
// nil in got exactly when it is in want (check alone treats a nil and an
// empty slice alike).
func checkClient(t *testing.T, what string, got, want store.Client) {
	t.Helper()
	check(t, what, got, want)
	checkNil(t, what+" JWKS", got.JWKS, want.JWKS)
}

var clientCases = []testCase{
	{"CreateAndGet", func(t *testing.T, s store.Store) {
		public := newClient("spa")
		public.SecretHash, public.Public, public.Audience, public.AccessTokenFormat = "", true, nil, store.FormatJWT
		for _, c := range []store.Client{newClient("backend"), public, {ID: "zero"}} {
			must(t, "CreateClient", s.CreateClient(t.Context(), c))
			got, err := s.GetClient(t.Context(), c.ID)
			must(t, "GetClient", err)
			checkClient(t, "GetClient("+c.ID+")", got, c)
		}
	}},
	{"Durations", func(t *testing.T, s store.Store) {
		for i, d := range []time.Duration{0, time.Nanosecond, -time.Minute, math.MaxInt64, math.MinInt64} {
			c := store.Client{ID: fmt.Sprintf("c%d", i), AccessTokenTTL: d, RefreshTokenTTL: d / 2, RefreshAbsoluteTTL: d / 3}
			must(t, "CreateClient", s.CreateClient(t.Context(), c))
			got, err := s.GetClient(t.Context(), c.ID)
			must(t, "GetClient", err)
			check(t, fmt.Sprintf("GetClient with lifetimes %d", d), got, c)
		}
	}},
	{"JWKS", func(t *testing.T, s store.Store) {
		// A nil JWKS comes back nil, and an empty one empty.
		tests := []struct {
			name string
			jwks []byte
		}{
			{"Nil", nil},
			{"Empty", []byte{}},
			{"Document", []byte(`{"keys": []}` + "\n")},
			{"NotUTF8", []byte{0xff, 0x00, 0xfe}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				c := newClient("c-" + tt.name)
				c.JWKS = tt.jwks
				must(t, "CreateClient", s.CreateClient(t.Context(), c))
				got, err := s.GetClient(t.Context(), c.ID)
				must(t, "GetClient", err)
				checkClient(t, "GetClient", got, c)
				// And the other way round, through UpdateClient.
				want := c
				want.JWKS = []byte(`{"keys":[]}`)
				if tt.jwks != nil {
					want.JWKS = nil
				}
				got, err = s.UpdateClient(t.Context(), c.ID, func(c *store.Client) error {
					c.JWKS = want.JWKS
					return nil
				})
				must(t, "UpdateClient", err)
				checkClient(t, "UpdateClient", got, want)
				got, err = s.GetClient(t.Context(), c.ID)
				must(t, "GetClient after UpdateClient", err)
				checkClient(t, "GetClient after UpdateClient", got, want)
			})
		}
	}},
	{"CreateDuplicate", func(t *testing.T, s store.Store) {
		c := newClient("backend")
		must(t, "CreateClient", s.CreateClient(t.Context(), c))
		other := newClient("backend")
		other.Public = true
		checkErr(t, "CreateClient", s.CreateClient(t.Context(), other), store.ErrAlreadyExists)
		got, err := s.GetClient(t.Context(), "backend")
		must(t, "GetClient", err)
		check(t, "GetClient", got, c)
	}},
	{"GetMissing", func(t *testing.T, s store.Store) {
		_, err := s.GetClient(t.Context(), "nobody")
		checkErr(t, "GetClient", err, store.ErrNotFound)
	}},
	{"List", func(t *testing.T, s store.Store) {
		got, err := s.ListClients(t.Context())
		must(t, "ListClients", err)
		check(t, "ListClients of none", got, nil)
		a, b, c, upper := newClient("a"), newClient("b"), newClient("c"), newClient("Z")
		b.Grants = nil
		for _, cl := range []store.Client{c, a, upper, b} {
			must(t, "CreateClient", s.CreateClient(t.Context(), cl))
		}
		got, err = s.ListClients(t.Context())
		must(t, "ListClients", err)
		check(t, "ListClients", got, []store.Client{upper, a, b, c}) // byte order
	}},
	{"Update", func(t *testing.T, s store.Store) {
		must(t, "CreateClient", s.CreateClient(t.Context(), newClient("backend")))
		want := store.Client{
			ID:                     "backend",
			Public:                 true,
			Grants:                 []string{"authorization_code"},
			Scopes:                 []string{"openid"},
			RedirectURIs:           []string{"https://app.example/new"},
			PostLogoutRedirectURIs: []string{"https://app.example/logged-out"},
			AccessTokenFormat:      store.FormatJWT,
			AuthMethod:             store.AuthNone,
			RefreshTokenTTL:        time.Hour,
			ExchangeAudiences:      []string{"https://new.example"},
			Disabled:               true,
			DisabledAt:             ptr(t0.Add(30 * time.Minute)),
			CreatedAt:              t0.Add(-time.Hour),
			UpdatedAt:              t0.Add(time.Hour),
		}
		got, err := s.UpdateClient(t.Context(), "backend", func(c *store.Client) error {
			checkClient(t, "client passed to update", *c, newClient("backend"))
			*c = want
			return nil
		})
		must(t, "UpdateClient", err)
		checkClient(t, "UpdateClient", got, want)
		got, err = s.GetClient(t.Context(), "backend")
		must(t, "GetClient", err)
		checkClient(t, "GetClient after UpdateClient", got, want)
	}},
	{"UpdateKeepsID", func(t *testing.T, s store.Store) {
		c := newClient("backend")
		must(t, "CreateClient", s.CreateClient(t.Context(), c))
		want := c
		want.Disabled = true
		got, err := s.UpdateClient(t.Context(), "backend", func(c *store.Client) error {
			c.ID, c.Disabled = "frontend", true
			return nil
		})
		must(t, "UpdateClient", err)
		check(t, "UpdateClient", got, want)
		got, err = s.GetClient(t.Context(), "backend")
		must(t, "GetClient", err)
		check(t, "GetClient after UpdateClient", got, want)
		_, err = s.GetClient(t.Context(), "frontend")
		checkErr(t, "GetClient(frontend)", err, store.ErrNotFound)
	}},
	{"UpdateRefused", func(t *testing.T, s store.Store) {
		c := newClient("backend")
		must(t, "CreateClient", s.CreateClient(t.Context(), c))
		_, err := s.UpdateClient(t.Context(), "backend", func(c *store.Client) error {
			c.Disabled, c.RedirectURIs = true, []string{"https://evil.example/"}
			return errUpdate
		})
		checkErr(t, "UpdateClient", err, errUpdate)
		got, err := s.GetClient(t.Context(), "backend")
		must(t, "GetClient", err)
		check(t, "GetClient after refused UpdateClient", got, c)
	}},
	{"UpdateMissing", func(t *testing.T, s store.Store) {
		called := false
		_, err := s.UpdateClient(t.Context(), "nobody", func(*store.Client) error {
			called = true
			return nil
		})
		checkErr(t, "UpdateClient", err, store.ErrNotFound)
		check(t, "update called", called, false)
	}},
}
