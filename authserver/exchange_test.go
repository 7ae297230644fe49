package authserver_test

import (
	"net/http"
	"net/url"
	"reflect"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/authserver"
	"github.com/gatehouse-dev/gatehouse/internal/accounts"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// exchangeClients adds to standardClients two services that may exchange:
// orders-svc for "consumers" and https://ledger.example/, and consumers-svc
// for "ledger", with an opaque format; and nogrant-svc, registered without
// the grant.
func exchangeClients(e *tokenEnv) {
	standardClients(e)
	e.client(accounts.ClientSpec{ID: "orders-svc", Grants: []string{exchangeGrant}, Scopes: []string{"orders", "profile"},
		ExchangeAudiences: []string{"consumers", "https://ledger.example/"}, AccessTokenTTL: time.Hour})
	e.client(accounts.ClientSpec{ID: "consumers-svc", Grants: []string{exchangeGrant}, Scopes: []string{"orders"},
		ExchangeAudiences: []string{"ledger"}, AccessTokenFormat: store.FormatOpaque})
	e.client(accounts.ClientSpec{ID: "nogrant-svc", Grants: []string{"client_credentials"}, Scopes: []string{"orders"}})
}

func TestTokenExchange(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		e := newTokenEnv(t, st, nil)
		exchangeClients(e)
		alice := e.user("alice", "consumer")
		user := e.login("web", "alice", "orders", "profile")
		subject := e.verify(user.AccessToken, "api")

		e.Clock.Advance(time.Minute)
		r := e.exchange("orders-svc", user.AccessToken, url.Values{"audience": {"consumers"}, "scope": {"orders"},
			"requested_token_type": {authserver.TokenTypeAccessToken}})
		if r.status != http.StatusOK {
			t.Fatalf("exchange: got %d %s, want 200", r.status, r.raw)
		}
		if r.str("issued_token_type") != authserver.TokenTypeAccessToken || r.str("token_type") != "Bearer" ||
			r.str("scope") != "orders" || r.body["refresh_token"] != nil {
			t.Errorf("exchange response: got %s, want a Bearer access token with scope orders and no refresh token", r.raw)
		}
		// The client's lifetime is an hour; the subject token has 4 minutes left.
		if r.body["expires_in"] != float64(4*60) {
			t.Errorf("expires_in: got %v, want the subject token's remaining 240", r.body["expires_in"])
		}
		c := e.verify(r.str("access_token"), "consumers")
		if c.Subject != alice.ID || c.Username != "alice" || !reflect.DeepEqual(c.Roles, []string{"consumer"}) ||
			c.SessionID != subject.SessionID || c.SessionID == "" || c.ClientID != "orders-svc" || c.Scope != "orders" ||
			!reflect.DeepEqual([]string(c.Audience), []string{"consumers"}) || *c.Expiry != *subject.Expiry {
			t.Errorf("exchanged claims: got %+v, want alice's identity and session, client orders-svc, aud consumers, scope orders, the subject's exp", c)
		}
		if c.Act == nil || c.Act.Subject != "orders-svc" || c.Act.Act != nil {
			t.Errorf("act: got %+v, want {sub: orders-svc}", c.Act)
		}

		// Exchanged again by the next service: the actors nest, the format
		// is that client's.
		r2 := e.exchange("consumers-svc", r.str("access_token"), url.Values{"audience": {"ledger"}})
		if r2.status != http.StatusOK {
			t.Fatalf("second exchange: got %d %s, want 200", r2.status, r2.raw)
		}
		info := e.introspect("rs", r2.str("access_token"), "")
		wantAct := map[string]any{"sub": "consumers-svc", "act": map[string]any{"sub": "orders-svc"}}
		if info.body["active"] != true || !equalJSON(info.body["act"], wantAct) || info.str("aud") != "ledger" ||
			info.str("sub") != alice.ID || info.str("scope") != "orders" || info.str("sid") != subject.SessionID {
			t.Errorf("second exchanged token: got %s, want aud ledger, alice, scope orders and act %v", info.raw, wantAct)
		}

		// Ending the user's session ends what was exchanged from it.
		if r := e.revoke("web", user.RefreshToken, ""); r.status != http.StatusOK {
			t.Fatalf("revoke: got %d %s", r.status, r.raw)
		}
		if e.active("rs", r.str("access_token")) || e.active("rs", r2.str("access_token")) {
			t.Errorf("exchanged tokens of a revoked session: got active, want inactive")
		}
	})
}

func TestTokenExchangeTargetsAndSubjects(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		e := newTokenEnv(t, st, nil)
		exchangeClients(e)
		e.user("alice")
		user := e.login("web", "alice", "orders")
		opaque := e.login("mobile", "alice")
		svc := e.clientToken("svc")

		r := e.exchange("orders-svc", user.AccessToken, url.Values{"audience": {"consumers"},
			"resource": {"https://ledger.example/"}})
		if r.status != http.StatusOK {
			t.Fatalf("audience and resource: got %d %s, want 200", r.status, r.raw)
		}
		c := e.verify(r.str("access_token"), "consumers")
		if !reflect.DeepEqual([]string(c.Audience), []string{"consumers", "https://ledger.example/"}) || c.Scope != "orders" {
			t.Errorf("got aud %v scope %q, want both targets and the subject's scope orders", c.Audience, c.Scope)
		}
		r = e.exchange("orders-svc", opaque.AccessToken, url.Values{"audience": {"consumers"}})
		if r.status != http.StatusOK || e.verify(r.str("access_token"), "consumers").Username != "alice" {
			t.Errorf("opaque subject token: got %d %s, want a JWT for alice", r.status, r.raw)
		}
		r = e.exchange("orders-svc", svc.AccessToken, url.Values{"audience": {"consumers"}})
		if r.status != http.StatusOK {
			t.Fatalf("client_credentials subject token: got %d %s, want 200", r.status, r.raw)
		}
		if c := e.verify(r.str("access_token"), "consumers"); c.Subject != "svc" || c.Username != "" || c.Act.Subject != "orders-svc" {
			t.Errorf("got %+v, want sub svc acted on by orders-svc", c)
		}
	})
}

func TestTokenExchangeErrors(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		e := newTokenEnv(t, st, nil)
		exchangeClients(e)
		e.user("alice")
		user := e.login("web", "alice", "orders")
		revoked := e.login("web", "alice", "orders")
		e.revoke("web", revoked.AccessToken, "")
		consumers := url.Values{"audience": {"consumers"}}

		tests := []struct {
			name, client, subject string
			extra                 url.Values
			status                int
			code                  string
		}{
			{"audience not allowed", "orders-svc", user.AccessToken, url.Values{"audience": {"ledger"}}, 400, "invalid_target"},
			{"one of two audiences not allowed", "orders-svc", user.AccessToken, url.Values{"audience": {"consumers", "ledger"}}, 400, "invalid_target"},
			{"resource not allowed", "orders-svc", user.AccessToken, url.Values{"resource": {"https://evil.example/"}}, 400, "invalid_target"},
			{"resource not a URI", "orders-svc", user.AccessToken, url.Values{"resource": {"consumers"}}, 400, "invalid_target"},
			{"no target", "orders-svc", user.AccessToken, nil, 400, "invalid_request"},
			{"scope beyond the subject's", "orders-svc", user.AccessToken, url.Values{"audience": {"consumers"}, "scope": {"orders profile"}}, 400, "invalid_scope"},
			{"scope beyond the client's", "consumers-svc", user.AccessToken, url.Values{"audience": {"ledger"}, "scope": {"profile"}}, 400, "invalid_scope"},
			{"revoked subject", "orders-svc", revoked.AccessToken, consumers, 400, "invalid_request"},
			{"garbage subject", "orders-svc", "garbage", consumers, 400, "invalid_request"},
			{"refresh token as subject", "orders-svc", user.RefreshToken, consumers, 400, "invalid_request"},
			{"foreign JWT", "orders-svc", foreignJWT(t, e), consumers, 400, "invalid_request"},
			{"missing subject", "orders-svc", "", consumers, 400, "invalid_request"},
			{"wrong subject_token_type", "orders-svc", user.AccessToken, url.Values{"audience": {"consumers"},
				"subject_token_type": {"urn:ietf:params:oauth:token-type:refresh_token"}}, 400, "invalid_request"},
			{"refresh token requested", "orders-svc", user.AccessToken, url.Values{"audience": {"consumers"},
				"requested_token_type": {"urn:ietf:params:oauth:token-type:refresh_token"}}, 400, "invalid_request"},
			{"actor token", "orders-svc", user.AccessToken, url.Values{"audience": {"consumers"},
				"actor_token": {user.AccessToken}, "actor_token_type": {authserver.TokenTypeAccessToken}}, 400, "invalid_request"},
			{"client without the grant", "nogrant-svc", user.AccessToken, consumers, 400, "unauthorized_client"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := e.exchange(tt.client, tt.subject, tt.extra)
				if r.status != tt.status || r.str("error") != tt.code {
					t.Fatalf("got %d %s, want %d %s", r.status, r.raw, tt.status, tt.code)
				}
			})
		}

		e.Clock.Advance(5 * time.Minute)
		if r := e.exchange("orders-svc", user.AccessToken, consumers); r.str("error") != "invalid_request" {
			t.Errorf("expired subject token: got %d %s, want invalid_request (RFC 8693 §2.2.2)", r.status, r.raw)
		}
		if n := len(e.events()); n != 1 {
			t.Errorf("events: got %d, want only the one revocation", n)
		}
	})
}
