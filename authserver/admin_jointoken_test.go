package authserver

import (
	"errors"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/adminapi"
	"github.com/gatehouse-dev/gatehouse/internal/keyring"
)

// TestAdminAPIJoinToken: POST /v1/join-tokens through adminapi.Remote, and
// the token is stored only hashed.
func TestAdminAPIJoinToken(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	a, ctx := f.admin(), t.Context()
	if _, err := a.CreateJoinToken(ctx, adminapi.NewJoinToken{Name: "orders"}); !errors.Is(err, adminapi.ErrNotFound) {
		t.Fatalf("for an unknown client: got %v, want ErrNotFound", err)
	}
	f.addClient(clientSpec("orders", "client_credentials"))
	if _, err := a.CreateJoinToken(ctx, adminapi.NewJoinToken{Name: "orders", TTL: adminapi.Duration(30 * 24 * time.Hour)}); !errors.Is(err, adminapi.ErrInvalid) {
		t.Fatalf("with a 30-day lifetime: got %v, want ErrInvalid", err)
	}
	jt, err := a.CreateJoinToken(ctx, adminapi.NewJoinToken{Name: "orders", TTL: adminapi.Duration(10 * time.Minute)})
	if err != nil || jt.Name != "orders" || !jt.ExpiresAt.Equal(f.clock.Now().Add(10*time.Minute)) {
		t.Fatalf("got %+v, %v, want a token for orders expiring in 10m", jt, err)
	}
	rec, err := f.store.GetJoinToken(ctx, f.keyring.Hasher(keyring.PurposeJoinToken).Hash(jt.Token))
	if err != nil || rec.Name != "orders" || rec.UsedAt != nil {
		t.Fatalf("stored: got %+v, %v, want an unused token for orders under its keyed hash", rec, err)
	}
	if _, err := f.store.GetJoinToken(ctx, jt.Token); err == nil {
		t.Fatalf("the token is stored in clear")
	}
}
