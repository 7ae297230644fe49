package storetest

import (
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// newUser returns a user with every field set.
func newUser(id, username string) store.User {
	return store.User{
		ID:           id,
		Username:     username,
		PasswordHash: "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
		Roles:        []string{"admin", "viewer"},
		// microseconds survive: the server compares with it to the instant
		TokensNotBefore: ptr(t0.Add(-time.Minute + 123456*time.Microsecond)),
		CreatedAt:       t0,
		UpdatedAt:       t0.Add(time.Second),
	}
}

var userCases = []testCase{
	{"CreateAndGet", func(t *testing.T, s store.Store) {
		u := newUser("u1", "alice")
		must(t, "CreateUser", s.CreateUser(t.Context(), u))
		got, err := s.GetUser(t.Context(), "alice")
		must(t, "GetUser", err)
		check(t, "GetUser", got, u)
		got, err = s.GetUserByID(t.Context(), "u1")
		must(t, "GetUserByID", err)
		check(t, "GetUserByID", got, u)
	}},
	{"ZeroValues", func(t *testing.T, s store.Store) {
		u := store.User{ID: "u1", Username: "alice"}
		must(t, "CreateUser", s.CreateUser(t.Context(), u))
		got, err := s.GetUser(t.Context(), "alice")
		must(t, "GetUser", err)
		check(t, "GetUser", got, u)
	}},
	{"TimesInOtherZones", func(t *testing.T, s store.Store) {
		u := newUser("u1", "alice")
		u.CreatedAt = t0.In(time.FixedZone("UTC+5", 5*60*60))
		u.UpdatedAt = t0.In(time.FixedZone("UTC-7", -7*60*60))
		must(t, "CreateUser", s.CreateUser(t.Context(), u))
		got, err := s.GetUser(t.Context(), "alice")
		must(t, "GetUser", err)
		check(t, "GetUser", got, u) // check requires UTC
	}},
	{"CreateDuplicate", func(t *testing.T, s store.Store) {
		alice := newUser("u1", "alice")
		must(t, "CreateUser", s.CreateUser(t.Context(), alice))
		for _, u := range []store.User{
			newUser("u2", "alice"), // username taken
			newUser("u1", "bob"),   // ID taken
		} {
			checkErr(t, "CreateUser("+u.ID+", "+u.Username+")", s.CreateUser(t.Context(), u), store.ErrAlreadyExists)
		}
		got, err := s.GetUserByID(t.Context(), "u1")
		must(t, "GetUserByID", err)
		check(t, "GetUserByID", got, alice)
		_, err = s.GetUser(t.Context(), "bob")
		checkErr(t, "GetUser(bob)", err, store.ErrNotFound)
	}},
	{"GetMissing", func(t *testing.T, s store.Store) {
		must(t, "CreateUser", s.CreateUser(t.Context(), newUser("u1", "alice")))
		_, err := s.GetUser(t.Context(), "u1")
		checkErr(t, "GetUser(u1)", err, store.ErrNotFound)
		_, err = s.GetUserByID(t.Context(), "alice")
		checkErr(t, "GetUserByID(alice)", err, store.ErrNotFound)
	}},
	{"List", func(t *testing.T, s store.Store) {
		got, err := s.ListUsers(t.Context())
		must(t, "ListUsers", err)
		check(t, "ListUsers of none", got, nil)
		carol, alice, bob, dave := newUser("u1", "carol"), newUser("u2", "alice"), newUser("u3", "bob"), newUser("u4", "Dave")
		bob.Roles = nil
		for _, u := range []store.User{carol, alice, dave, bob} {
			must(t, "CreateUser", s.CreateUser(t.Context(), u))
		}
		got, err = s.ListUsers(t.Context())
		must(t, "ListUsers", err)
		check(t, "ListUsers", got, []store.User{dave, alice, bob, carol}) // byte order
	}},
	{"Update", func(t *testing.T, s store.Store) {
		must(t, "CreateUser", s.CreateUser(t.Context(), newUser("u1", "alice")))
		want := store.User{
			ID:              "u1",
			Username:        "alice",
			PasswordHash:    "$argon2id$v=19$m=65536,t=3,p=4$bmV3c2FsdA$bmV3aGFzaA",
			Roles:           []string{"viewer"},
			Disabled:        true,
			TokensNotBefore: ptr(t0.Add(30 * time.Minute)),
			CreatedAt:       t0,
			UpdatedAt:       t0.Add(time.Hour),
		}
		got, err := s.UpdateUser(t.Context(), "alice", func(u *store.User) error {
			check(t, "user passed to update", *u, newUser("u1", "alice"))
			u.PasswordHash, u.Roles, u.Disabled, u.UpdatedAt = want.PasswordHash, want.Roles, want.Disabled, want.UpdatedAt
			u.TokensNotBefore = want.TokensNotBefore
			return nil
		})
		must(t, "UpdateUser", err)
		check(t, "UpdateUser", got, want)
		got, err = s.GetUser(t.Context(), "alice")
		must(t, "GetUser", err)
		check(t, "GetUser after UpdateUser", got, want)
	}},
	{"UpdateKeepsIDAndUsername", func(t *testing.T, s store.Store) {
		alice := newUser("u1", "alice")
		must(t, "CreateUser", s.CreateUser(t.Context(), alice))
		want := alice
		want.Disabled = true
		got, err := s.UpdateUser(t.Context(), "alice", func(u *store.User) error {
			u.ID, u.Username, u.Disabled = "u2", "mallory", true
			return nil
		})
		must(t, "UpdateUser", err)
		check(t, "UpdateUser", got, want)
		got, err = s.GetUserByID(t.Context(), "u1")
		must(t, "GetUserByID", err)
		check(t, "GetUserByID after UpdateUser", got, want)
		_, err = s.GetUser(t.Context(), "mallory")
		checkErr(t, "GetUser(mallory)", err, store.ErrNotFound)
		_, err = s.GetUserByID(t.Context(), "u2")
		checkErr(t, "GetUserByID(u2)", err, store.ErrNotFound)
	}},
	{"UpdateRefused", func(t *testing.T, s store.Store) {
		alice := newUser("u1", "alice")
		must(t, "CreateUser", s.CreateUser(t.Context(), alice))
		_, err := s.UpdateUser(t.Context(), "alice", func(u *store.User) error {
			u.Disabled, u.Roles = true, nil
			return errUpdate
		})
		checkErr(t, "UpdateUser", err, errUpdate)
		got, err := s.GetUser(t.Context(), "alice")
		must(t, "GetUser", err)
		check(t, "GetUser after refused UpdateUser", got, alice)
	}},
	{"UpdateMissing", func(t *testing.T, s store.Store) {
		called := false
		_, err := s.UpdateUser(t.Context(), "nobody", func(*store.User) error {
			called = true
			return nil
		})
		checkErr(t, "UpdateUser", err, store.ErrNotFound)
		check(t, "update called", called, false)
	}},
}
