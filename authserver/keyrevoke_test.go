package authserver

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/accounts"
	"github.com/gatehouse-dev/gatehouse/internal/adminapi"
	"github.com/gatehouse-dev/gatehouse/internal/jose"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/internal/secevent"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// keyEvents returns the key-retired events in the fixture's log.
func (f *fixture) keyEvents() []store.Event {
	f.t.Helper()
	events, err := f.store.ListEvents(f.t.Context(), 0, 1000)
	if err != nil {
		f.t.Fatal(err)
	}
	return slices.DeleteFunc(events, func(e store.Event) bool { return e.Type != secevent.KeyRetired })
}

// TestRevokeKey: revoking the signing key through the admin API takes it out
// of the JWKS at once, the rotated key (still in its publish delay) signs
// from then on, and a key-retired event naming the kid is in the log.
func TestRevokeKey(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	secret := f.addClient(accounts.ClientSpec{ID: "svc", Grants: []string{oauth.GrantClientCredentials}})
	old := kids(f.jwks())[0]
	next, err := f.admin().RotateKey(t.Context(), adminapi.RotateKey{})
	if err != nil {
		t.Fatal(err)
	}
	before := f.clientToken("svc", secret)
	if got := f.kidOf(before); got != old {
		t.Fatalf("token before the revocation signed by %q, want %q", got, old)
	}

	k, err := f.admin().RevokeKey(t.Context(), old)
	if err != nil {
		t.Fatalf("revoke: %v", err)
	}
	if k.ID != old || k.State != adminapi.KeyExpired || k.ExpiresAt == nil || !k.ExpiresAt.Equal(f.clock.Now()) {
		t.Fatalf("revoked key: got %+v, want %q expired now", k, old)
	}
	if got := kids(f.jwks()); !slices.Equal(got, []string{next.ID}) {
		t.Fatalf("JWKS after revoke: got %v, want only %q", got, next.ID)
	}
	if got := f.kidOf(f.clientToken("svc", secret)); got != next.ID {
		t.Fatalf("token after the revocation signed by %q, want %q", got, next.ID)
	}
	if err := f.verifyWithJWKS(before); !errors.Is(err, jose.ErrUnknownKey) {
		t.Fatalf("old token against the JWKS: got %v, want ErrUnknownKey", err)
	}
	events := f.keyEvents()
	if len(events) != 1 {
		t.Fatalf("key-retired events: got %+v, want one", events)
	}
	sub := newSET(events[0], f.srv.Issuer(), "rcv", "s1").Subject
	if sub == nil || sub.Format != secevent.FormatOpaque || sub.ID != old {
		t.Fatalf("SET subject: got %+v, want opaque %q", sub, old)
	}
	if !strings.Contains(f.log.String(), "signing key revoked") {
		t.Errorf("no audit line for the revocation in %s", f.log.String())
	}
	if _, err := f.admin().RevokeKey(t.Context(), "no-such-kid"); !errors.Is(err, adminapi.ErrNotFound) {
		t.Errorf("revoke an unknown kid: got %v, want ErrNotFound", err)
	}
}

// TestRevokeKeyRefusesTheOnlySigner: revoking the only key that can sign
// is refused with 409, and changes nothing.
func TestRevokeKeyRefusesTheOnlySigner(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	only := kids(f.jwks())[0]
	_, err := f.admin().RevokeKey(t.Context(), only)
	apiErr, ok := errors.AsType[*adminapi.Error](err)
	if !ok || apiErr.Status != http.StatusConflict || !errors.Is(err, adminapi.ErrConflict) ||
		!strings.Contains(apiErr.Description, "rotate first") {
		t.Fatalf("revoke the only key: got %v, want 409 conflict saying to rotate first", err)
	}
	if got := kids(f.jwks()); !slices.Equal(got, []string{only}) {
		t.Fatalf("JWKS after a refused revoke: got %v, want %q", got, only)
	}
	if got := f.srv.keys.signer().ID(); got != only {
		t.Fatalf("signer after a refused revoke: got %q, want %q", got, only)
	}
	if events := f.keyEvents(); len(events) != 0 {
		t.Fatalf("key-retired events after a refused revoke: got %+v, want none", events)
	}
}

// TestRevokePendingKey: revoking a key still in its publish delay cancels
// the rotation: the current key keeps signing past the revoked key's
// ActiveAt instead of being retired by it.
func TestRevokePendingKey(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	current := kids(f.jwks())[0]
	pending, err := f.admin().RotateKey(t.Context(), adminapi.RotateKey{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.admin().RevokeKey(t.Context(), pending.ID); err != nil {
		t.Fatalf("revoke the pending key: %v", err)
	}
	f.clock.Advance(defaultKeyPublishDelay + time.Minute)
	if err := f.srv.keys.reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := kids(f.jwks()); !slices.Equal(got, []string{current}) {
		t.Fatalf("JWKS after the revoked key's ActiveAt: got %v, want only %q", got, current)
	}
	if got := f.srv.keys.signer().ID(); got != current {
		t.Fatalf("signer after the revoked key's ActiveAt: got %q, want %q", got, current)
	}
}

// TestRotationEmitsNoKeyEvent: a key retired by rotation stays trusted
// until its tokens expire, so rotation never tells receivers to refuse it.
func TestRotationEmitsNoKeyEvent(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	old := kids(f.jwks())[0]
	k, err := f.admin().RotateKey(t.Context(), adminapi.RotateKey{})
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(defaultKeyPublishDelay)
	if err := f.srv.keys.reload(t.Context()); err != nil { // retires the old key
		t.Fatal(err)
	}
	f.clock.Advance(24 * time.Hour)
	if err := f.srv.keys.reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := kids(f.jwks()); !slices.Equal(got, []string{k.ID}) || slices.Contains(got, old) {
		t.Fatalf("JWKS after the old key expired: got %v, want only %q", got, k.ID)
	}
	if events := f.keyEvents(); len(events) != 0 {
		t.Fatalf("key-retired events after a rotation: got %+v, want none", events)
	}
}
