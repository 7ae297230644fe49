package authserver

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// TestUserChangeTokens: a password change, a disabling, a roles change and
// the revocation of all a user's sessions end every access token of the
// user issued up to then — with a session or without (a grant without a
// refresh token, an exchanged token), JWT or opaque, also in the very
// second of the change — at introspection exactly as at an SSF receiver's
// verifier. A token issued after the change, even in that same second, is
// active at both. Refresh tokens end with the sessions, except on a roles
// change, whose sessions go on with the new roles. Enabling a disabled user
// again brings no old token back.
func TestUserChangeTokens(t *testing.T) {
	tests := []struct {
		name   string
		change func(e *disableEnv) error
		// password is the one that works after the change; "" if the user
		// cannot log in.
		password string
		// sessionsGoOn: refresh tokens issued before still work.
		sessionsGoOn bool
	}{
		{name: "password set", password: "alice-password-2", change: func(e *disableEnv) error {
			return e.admin().SetPassword(e.t.Context(), "alice", "alice-password-2")
		}},
		{name: "user disabled", change: func(e *disableEnv) error {
			_, err := e.admin().SetUserDisabled(e.t.Context(), "alice", true)
			return err
		}},
		{name: "roles changed", password: "alice-password", sessionsGoOn: true, change: func(e *disableEnv) error {
			_, err := e.admin().SetRoles(e.t.Context(), "alice", []string{"auditor"})
			return err
		}},
		{name: "all sessions revoked", password: "alice-password", change: func(e *disableEnv) error {
			_, err := e.admin().RevokeSessions(e.t.Context(), "alice")
			return err
		}},
	}
	for _, kind := range storeKinds() {
		for _, tt := range tests {
			t.Run(kind+"/"+tt.name, func(t *testing.T) {
				e := newDisableEnv(t, openStore(t, kind))
				web, mobile, other, svc := e.login("web"), e.login("mobile"), e.login("other"), e.clientToken("svc")
				exchanged := e.exchange(web.access).str("access_token")
				code := e.newCode("web", e.alice.ID, webRedirect)
				old := []struct{ name, token string }{
					{"web JWT (with a session)", web.access},
					{"other JWT (no refresh token)", other.access},
					{"JWT exchanged for orders", exchanged},
				}
				for _, o := range old {
					if !e.agree(o.token) {
						t.Fatalf("%s before the change: got inactive, want active", o.name)
					}
				}

				e.clock.Advance(500 * time.Millisecond) // the same second as the tokens: they count as before
				if err := tt.change(e); err != nil {
					t.Fatalf("change: %v", err)
				}
				for _, o := range old {
					if e.agree(o.token) {
						t.Errorf("%s after the change: got active, want inactive at introspection and the receiver", o.name)
					}
				}
				if e.introspect("rs", mobile.access) {
					t.Errorf("opaque access token after the change: got active, want inactive")
				}
				if !e.agree(svc.access) {
					t.Errorf("a client's own token after the change: got inactive, want active")
				}
				if r := e.exchange(other.access); r.str("error") != oauth.ErrInvalidRequest {
					t.Errorf("exchange of a token from before the change: got %d %v, want invalid_request", r.status, r.body)
				}
				if r := e.token(code, "web", e.secrets["web"]); r.str("error") != oauth.ErrInvalidGrant {
					t.Errorf("code issued before the change: got %d %v, want invalid_grant", r.status, r.body)
				}

				e.clock.Advance(100 * time.Millisecond) // still the second of the change
				e.checkRefresh(tt.sessionsGoOn, web, mobile)
				if tt.password == "" {
					if r := e.passwordGrant("web", e.secrets["web"], "alice", "alice-password"); r.str("error") != oauth.ErrInvalidGrant {
						t.Errorf("login of the disabled user: got %d %v, want invalid_grant", r.status, r.body)
					}
					e.clock.Advance(time.Second)
					if _, err := e.admin().SetUserDisabled(t.Context(), "alice", false); err != nil {
						t.Fatal(err)
					}
					for _, o := range old {
						if e.agree(o.token) {
							t.Errorf("%s after enabling the user again: got active, want inactive", o.name)
						}
					}
					if e.introspect("rs", mobile.access) || e.introspect("mobile", mobile.refresh) {
						t.Errorf("mobile's tokens after enabling the user again: got active, want inactive")
					}
					tt.password = "alice-password"
				}
				e.checkNewTokens(tt.password)
				e.clock.Advance(time.Second)
				e.checkNewTokens(tt.password)
			})
		}
	}
}

// checkRefresh checks the refresh tokens issued before a change: they work
// if sessionsGoOn (and the access token they give carries the new roles,
// "auditor"), and are inactive and refused otherwise.
func (e *disableEnv) checkRefresh(sessionsGoOn bool, web, mobile tokens) {
	e.t.Helper()
	if got := e.introspect("mobile", mobile.refresh); got != sessionsGoOn {
		e.t.Errorf("refresh token from before the change: got active=%v, want %v", got, sessionsGoOn)
	}
	r := e.refresh("web", web.refresh)
	if !sessionsGoOn {
		if r.str("error") != oauth.ErrInvalidGrant {
			e.t.Errorf("refresh with a token from before the change: got %d %v, want invalid_grant", r.status, r.body)
		}
		return
	}
	if r.status != http.StatusOK {
		e.t.Fatalf("refresh with a token from before the change: got %d %v, want 200", r.status, r.body)
	}
	p, err := e.verifier.Verify(e.t.Context(), r.str("access_token"))
	if err != nil || !slices.Equal(p.Roles, []string{"auditor"}) || !e.agree(r.str("access_token")) {
		e.t.Errorf("token refreshed after the roles change: got %+v, %v, want active with roles [auditor]", p, err)
	}
}

// checkNewTokens logs alice in with pw and checks that her new tokens —
// JWT, opaque, exchanged — are active at introspection and the receiver.
func (e *disableEnv) checkNewTokens(pw string) {
	e.t.Helper()
	r := e.passwordGrant("web", e.secrets["web"], "alice", pw)
	if r.status != http.StatusOK {
		e.t.Fatalf("login after the change: got %d %v, want 200", r.status, r.body)
	}
	web := r.str("access_token")
	exchanged := e.exchange(web).str("access_token")
	for _, tok := range []struct{ name, token string }{{"JWT", web}, {"exchanged JWT", exchanged}} {
		if !e.agree(tok.token) {
			e.t.Errorf("%s issued at %v, after the change: got inactive, want active", tok.name, e.clock.Now())
		}
	}
	m := e.passwordGrant("mobile", e.secrets["mobile"], "alice", pw)
	if !e.introspect("rs", m.str("access_token")) {
		e.t.Errorf("opaque token issued at %v, after the change: got inactive, want active", e.clock.Now())
	}
}

// TestIssuedAt: a token minted in the second of its user's last change,
// after the change, is dated the next second; otherwise it is dated now.
func TestIssuedAt(t *testing.T) {
	now := time.Date(2031, time.March, 4, 5, 6, 7, 600_000_000, time.UTC)
	second := now.Truncate(time.Second)
	at := func(d time.Duration) *time.Time { t := now.Add(d); return &t }
	tests := []struct {
		name string
		t    accessToken
		want time.Time
	}{
		{"a client's own token", accessToken{}, second},
		{"user never changed", accessToken{user: &store.User{}}, second},
		{"changed in an earlier second", accessToken{user: &store.User{TokensNotBefore: at(-time.Second)}}, second},
		{"changed earlier in this second (settle waits it out)", accessToken{user: &store.User{TokensNotBefore: at(-500 * time.Millisecond)}}, second},
		{"changed at this very instant", accessToken{user: &store.User{TokensNotBefore: at(0)}}, second},
		{"changed later (another clock)", accessToken{user: &store.User{TokensNotBefore: at(200 * time.Millisecond)}}, second},
		{"changed in a later second", accessToken{user: &store.User{TokensNotBefore: at(time.Second)}}, second},
		{"exchanged from a later-dated token", accessToken{notBefore: second.Add(time.Second)}, second.Add(time.Second)},
		{"exchanged from an earlier token", accessToken{notBefore: second.Add(-time.Minute)}, second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.t.issuedAt(now); !got.Equal(tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// TestTwoChangesInOneSecond: a token minted for a user between two changes
// to the user in one second is ended by the second change, at
// introspection as at the receiver: a grant in the second of a change waits
// for the next second instead of dating its token ahead (found in review:
// a token dated ahead outlived a disabling in the same second). A change
// that lands while the grant waits refuses the grant.
func TestTwoChangesInOneSecond(t *testing.T) {
	for _, kind := range storeKinds() {
		t.Run(kind, func(t *testing.T) {
			e := newDisableEnv(t, openStore(t, kind))
			e.clock.Advance(time.Second - time.Duration(e.clock.Now().Nanosecond()) + 100*time.Millisecond) // T.1
			if _, err := e.admin().SetRoles(t.Context(), "alice", []string{"auditor"}); err != nil {
				t.Fatal(err)
			}
			e.clock.Advance(100 * time.Millisecond) // T.2: a login right after the first change
			between := e.login("other")
			if !e.agree(between.access) {
				t.Fatalf("token minted after the first change: got inactive, want active")
			}
			if _, err := e.admin().RevokeSessions(t.Context(), "alice"); err != nil { // the second change
				t.Fatal(err)
			}
			if e.agree(between.access) {
				t.Errorf("token minted between the changes, after the second: got active, want inactive")
			}

			// A change while the grant waits for the next second.
			e.clock.Advance(2 * time.Second)
			if _, err := e.admin().SetRoles(t.Context(), "alice", []string{"auditor", "viewer"}); err != nil {
				t.Fatal(err)
			}
			e.srv.sleep = func(_ context.Context, d time.Duration) error {
				e.clock.Advance(d)
				_, err := e.admin().SetUserDisabled(t.Context(), "alice", true)
				return err
			}
			if r := e.passwordGrant("other", e.secrets["other"], "alice", "alice-password"); r.str("error") != oauth.ErrInvalidGrant {
				t.Errorf("grant whose user was disabled while it waited: got %d %v, want invalid_grant", r.status, r.body)
			}
		})
	}
}
