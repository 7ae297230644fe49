package authserver_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/authserver"
	"github.com/gatehouse-dev/gatehouse/internal/jose"
	"github.com/gatehouse-dev/gatehouse/internal/keyring"
	"github.com/gatehouse-dev/gatehouse/internal/secevent"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// checkEvents fails t unless the log holds exactly want (compared on Type,
// Subject, SessionID, ClientID and TokenID), with increasing IDs, details
// naming the initiator, and no token in the data.
func checkEvents(t *testing.T, e *tokenEnv, initiator string, want ...store.Event) {
	t.Helper()
	got := e.events()
	if len(got) != len(want) {
		t.Fatalf("events: got %d %+v, want %d %+v", len(got), got, len(want), want)
	}
	for i, ev := range got {
		w := want[i]
		if ev.Type != w.Type || ev.Subject != w.Subject || ev.SessionID != w.SessionID || ev.ClientID != w.ClientID || ev.TokenID != w.TokenID {
			t.Errorf("event %d: got %+v, want %+v", i, ev, w)
		}
		if i > 0 && ev.ID <= got[i-1].ID {
			t.Errorf("event %d: got ID %d after %d, want increasing IDs", i, ev.ID, got[i-1].ID)
		}
		var d secevent.Details
		if err := json.Unmarshal(ev.Data, &d); err != nil || d.InitiatingEntity != initiator || d.ReasonAdmin["en"] == "" {
			t.Errorf("event %d data: got %s (%v), want initiating_entity %q and a reason", i, ev.Data, err, initiator)
		}
		if !ev.CreatedAt.Equal(e.Clock.Now()) {
			t.Errorf("event %d: got CreatedAt %v, want %v", i, ev.CreatedAt, e.Clock.Now())
		}
	}
}

func TestRevokeRefreshTokenEndsSession(t *testing.T) {
	for _, client := range []string{"web", "mobile"} { // JWT and opaque access tokens
		t.Run(client, func(t *testing.T) {
			forEachStore(t, func(t *testing.T, st store.Store) {
				e := newTokenEnv(t, st, nil)
				standardClients(e)
				alice := e.user("alice")
				first := e.login(client, "alice")
				r := e.refresh(client, first.RefreshToken)
				if r.status != http.StatusOK {
					t.Fatalf("refresh: got %d %s, want 200", r.status, r.raw)
				}
				rt, at := r.str("refresh_token"), r.str("access_token")
				sid := e.introspect(client, rt, "refresh_token").str("sid")
				other := e.login(client, "alice") // another session of the same user
				if !e.active("rs", at) || sid == "" {
					t.Fatalf("before revocation: got access token inactive or no sid, want active with a sid")
				}

				r = e.revoke(client, rt, "refresh_token")
				if r.status != http.StatusOK || r.raw != "" {
					t.Fatalf("revoke: got %d %q, want 200 with no body", r.status, r.raw)
				}
				if r := e.refresh(client, rt); r.status != http.StatusBadRequest || r.str("error") != "invalid_grant" {
					t.Errorf("refresh with the revoked token: got %d %s, want 400 invalid_grant", r.status, r.raw)
				}
				for name, tok := range map[string]string{"refresh token": rt, "access token": at,
					"first access token": first.AccessToken, "first refresh token": first.RefreshToken} {
					if e.active(client, tok) {
						t.Errorf("%s of the revoked session: got active, want inactive", name)
					}
				}
				if client == "mobile" { // opaque tokens of the family are revoked in the store too
					rec, err := st.GetAccessToken(t.Context(), e.Keyring.Hasher(keyring.PurposeAccessToken).Hash(at))
					if err != nil || rec.RevokedAt == nil {
						t.Errorf("stored opaque access token: got %+v, %v, want it revoked", rec, err)
					}
				}
				if !e.active("rs", other.AccessToken) || !e.active(client, other.RefreshToken) {
					t.Errorf("the user's other session: got inactive, want active")
				}
				// Revoking again, or revoking an older token of the family,
				// changes nothing and records nothing more.
				for _, tok := range []string{rt, first.RefreshToken} {
					if r := e.revoke(client, tok, ""); r.status != http.StatusOK {
						t.Errorf("revoke again: got %d %s, want 200", r.status, r.raw)
					}
				}
				checkEvents(t, e, secevent.InitiatedByUser,
					store.Event{Type: secevent.SessionRevoked, Subject: alice.ID, SessionID: sid, ClientID: client})
			})
		})
	}
}

func TestRevokeAccessToken(t *testing.T) {
	for _, client := range []string{"web", "mobile"} {
		t.Run(client, func(t *testing.T) {
			forEachStore(t, func(t *testing.T, st store.Store) {
				e := newTokenEnv(t, st, nil)
				standardClients(e)
				alice := e.user("alice")
				tok := e.login(client, "alice")
				info := e.introspect("rs", tok.AccessToken, "")
				jti, sid := info.str("jti"), info.str("sid")
				if r := e.revoke(client, tok.AccessToken, "access_token"); r.status != http.StatusOK {
					t.Fatalf("revoke: got %d %s, want 200", r.status, r.raw)
				}
				if e.active("rs", tok.AccessToken) {
					t.Errorf("revoked access token: got active, want inactive")
				}
				// Only the access token: the session goes on.
				if !e.active(client, tok.RefreshToken) {
					t.Errorf("refresh token of the session: got inactive, want active")
				}
				r := e.refresh(client, tok.RefreshToken)
				if r.status != http.StatusOK || !e.active("rs", r.str("access_token")) {
					t.Errorf("refresh after revoking an access token: got %d %s, want a new active token", r.status, r.raw)
				}
				e.revoke(client, tok.AccessToken, "")
				checkEvents(t, e, secevent.InitiatedByUser, store.Event{Type: secevent.TokenRevoked,
					Subject: alice.ID, SessionID: sid, ClientID: client, TokenID: jti})
			})
		})
	}
}

func TestRevokeClientCredentialsToken(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		e := newTokenEnv(t, st, nil)
		standardClients(e)
		tok := e.clientToken("svc")
		jti := e.introspect("rs", tok.AccessToken, "").str("jti")
		if r := e.revoke("svc", tok.AccessToken, ""); r.status != http.StatusOK {
			t.Fatalf("revoke: got %d %s, want 200", r.status, r.raw)
		}
		if e.active("rs", tok.AccessToken) {
			t.Errorf("revoked token: got active, want inactive")
		}
		checkEvents(t, e, secevent.InitiatedByUser,
			store.Event{Type: secevent.TokenRevoked, Subject: "svc", ClientID: "svc", TokenID: jti})
	})
}

func TestRevokeIsHarmlessForWhatIsNotTheClients(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		e := newTokenEnv(t, st, nil)
		standardClients(e)
		e.user("alice")
		web := e.login("web", "alice")
		svc := e.clientToken("svc")
		tests := []struct{ name, client, token, hint string }{
			{"another client's refresh token", "mobile", web.RefreshToken, "refresh_token"},
			{"another client's JWT", "rs", web.AccessToken, ""},
			{"another client's opaque token", "web", svc.AccessToken, "access_token"},
			{"garbage", "web", "garbage", ""},
			{"a JWT of another issuer", "web", foreignJWT(t, e), ""},
			{"an unknown hint", "web", "garbage", "id_token"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := e.revoke(tt.client, tt.token, tt.hint)
				if r.status != http.StatusOK || r.raw != "" {
					t.Fatalf("got %d %q, want 200 with no body (RFC 7009 §2.2)", r.status, r.raw)
				}
			})
		}
		if !e.active("rs", web.AccessToken) || !e.active("web", web.RefreshToken) || !e.active("rs", svc.AccessToken) {
			t.Errorf("after revocations by other clients: got a token inactive, want all active")
		}
		if evs := e.events(); len(evs) != 0 {
			t.Errorf("events: got %+v, want none", evs)
		}
	})
}

func TestRevokeWithUnknownHintStillRevokes(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		e := newTokenEnv(t, st, nil)
		standardClients(e)
		e.user("alice")
		tok := e.login("web", "alice")
		// RFC 7009 §2.1: the hint only orders the search; a server that
		// can find the token anyway must not answer unsupported_token_type.
		if r := e.revoke("web", tok.RefreshToken, "urn:example:unknown"); r.status != http.StatusOK {
			t.Fatalf("got %d %s, want 200", r.status, r.raw)
		}
		if e.active("web", tok.RefreshToken) || e.active("rs", tok.AccessToken) {
			t.Errorf("got the session active, want it revoked")
		}
	})
}

func TestRefreshReuseRecordsSessionRevoked(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		e := newTokenEnv(t, st, func(c *authserver.Config) { c.RefreshGrace = -1 })
		standardClients(e)
		alice := e.user("alice")
		tok := e.login("mobile", "alice")
		sid := e.introspect("mobile", tok.RefreshToken, "").str("sid")
		r := e.refresh("mobile", tok.RefreshToken)
		if r.status != http.StatusOK {
			t.Fatalf("refresh: got %d %s, want 200", r.status, r.raw)
		}
		successor, at := r.str("refresh_token"), r.str("access_token")
		if r := e.refresh("mobile", tok.RefreshToken); r.str("error") != "invalid_grant" {
			t.Fatalf("reuse: got %d %s, want invalid_grant", r.status, r.raw)
		}
		if e.active("mobile", successor) || e.active("rs", at) {
			t.Errorf("after reuse: got the successor or its access token active, want the family revoked")
		}
		checkEvents(t, e, secevent.InitiatedByPolicy,
			store.Event{Type: secevent.SessionRevoked, Subject: alice.ID, SessionID: sid, ClientID: "mobile"})
	})
}

func TestRevocationMarkersAreCollected(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		e := newTokenEnv(t, st, nil)
		standardClients(e)
		e.user("alice")
		tok := e.login("web", "alice")
		jti := e.introspect("rs", tok.AccessToken, "").str("jti")
		sid := e.introspect("web", tok.RefreshToken, "").str("sid")
		e.revoke("web", tok.AccessToken, "")
		e.revoke("web", tok.RefreshToken, "")
		markers := e.Keyring.Hasher(keyring.PurposeRevocation)
		exists := func(key string) bool {
			_, err := st.GetAccessToken(t.Context(), markers.Hash(key))
			return err == nil
		}
		if !exists("jti:"+jti) || !exists("sid:"+sid) {
			t.Fatalf("after revocation: got no marker for the JWT or the session, want both")
		}
		gc := func() {
			t.Helper()
			if _, err := st.DeleteExpired(t.Context(), e.Clock.Now(), e.Clock.Now().Add(-time.Hour)); err != nil {
				t.Fatalf("DeleteExpired: got error %v, want nil", err)
			}
		}
		gc()
		if !exists("jti:"+jti) || !exists("sid:"+sid) || e.active("rs", tok.AccessToken) {
			t.Fatalf("GC while the token lives: got a marker removed or the token active, want both markers kept")
		}
		// Once the JWT and the leeway verifiers allow have passed, the
		// markers go: nothing they covered can be accepted any more.
		e.Clock.Advance(5*time.Minute + jose.DefaultLeeway + time.Second)
		gc()
		if exists("jti:"+jti) || exists("sid:"+sid) {
			t.Errorf("GC after the token expired: got a marker left, want both removed")
		}
		if e.active("rs", tok.AccessToken) {
			t.Errorf("expired JWT: got active, want inactive")
		}
	})
}
