package resource_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/jose"
	"github.com/gatehouse-dev/gatehouse/resource"
)

// response is what a test reads back from a handler.
type response struct {
	status    int
	challenge string // WWW-Authenticate
	code      string // "error" in the JSON body
	reached   *resource.Principal
}

// serve sends a GET with the given Authorization header (none if empty)
// through h wrapped around a handler that records the principal it sees.
func serve(t *testing.T, wrap func(http.Handler) http.Handler, authorization string) response {
	t.Helper()
	var got response
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.reached = resource.FromContext(r.Context())
		if got.reached == nil {
			t.Error("next reached without a principal")
		}
		w.WriteHeader(http.StatusNoContent)
	})
	req := httptest.NewRequest(http.MethodGet, "/orders", nil)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	rec := httptest.NewRecorder()
	wrap(next).ServeHTTP(rec, req)
	got.status = rec.Code
	got.challenge = rec.Header().Get("WWW-Authenticate")
	if rec.Code != http.StatusNoContent {
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("got Content-Type %q, want %q", ct, "application/json")
		}
		var body struct {
			Error string `json:"error"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("error body %q: %v", rec.Body, err)
		}
		got.code = body.Error
	}
	return got
}

func TestMiddleware(t *testing.T) {
	key := generateKey(t, jose.ES256)
	now := time.Now()
	v := newStaticVerifier(t, key, nil)
	good := mint(t, key, staticIssuer, now, nil)
	expired := mint(t, key, staticIssuer, now, func(c *jose.Claims) { c.Expiry = jose.NewNumericDate(now.Add(-time.Hour)) })
	const bare = `Bearer realm="gatehouse"`

	tests := []struct {
		name          string
		authorization string
		wantStatus    int
		wantChallenge string // exact, or a prefix when it ends in ", "
		wantCode      string
	}{
		{name: "good token", authorization: "Bearer " + good, wantStatus: http.StatusNoContent},
		{name: "lower-case scheme", authorization: "bearer " + good, wantStatus: http.StatusNoContent},
		{name: "upper-case scheme", authorization: "BEARER " + good, wantStatus: http.StatusNoContent},
		{name: "no header", wantStatus: http.StatusUnauthorized, wantChallenge: bare, wantCode: "invalid_request"},
		{name: "basic scheme", authorization: "Basic YWxpY2U6c2VjcmV0", wantStatus: http.StatusUnauthorized, wantChallenge: bare, wantCode: "invalid_request"},
		{name: "scheme only", authorization: "Bearer", wantStatus: http.StatusUnauthorized, wantChallenge: bare, wantCode: "invalid_request"},
		{name: "scheme and blanks", authorization: "Bearer   ", wantStatus: http.StatusUnauthorized, wantChallenge: bare, wantCode: "invalid_request"},
		{
			name: "bad token", authorization: "Bearer not-a-token",
			wantStatus: http.StatusUnauthorized, wantChallenge: bare + `, error="invalid_token", `, wantCode: "invalid_token",
		},
		{
			name: "expired token", authorization: "Bearer " + expired,
			wantStatus: http.StatusUnauthorized, wantChallenge: bare + `, error="invalid_token", `, wantCode: "invalid_token",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := serve(t, resource.Middleware(v), tc.authorization)
			if got.status != tc.wantStatus {
				t.Fatalf("got status %d, want %d", got.status, tc.wantStatus)
			}
			if tc.wantStatus == http.StatusNoContent {
				if got.reached == nil || got.reached.Subject != "alice" || got.reached.Token != good {
					t.Errorf("got principal %+v, want alice's with the raw token", got.reached)
				}
				return
			}
			if got.reached != nil {
				t.Errorf("got next reached with %+v, want it not called", got.reached)
			}
			if prefix, ok := strings.CutSuffix(tc.wantChallenge, ", "); ok {
				if !strings.HasPrefix(got.challenge, prefix+", ") {
					t.Errorf("got WWW-Authenticate %q, want prefix %q", got.challenge, tc.wantChallenge)
				}
			} else if got.challenge != tc.wantChallenge {
				t.Errorf("got WWW-Authenticate %q, want %q", got.challenge, tc.wantChallenge)
			}
			if got.code != tc.wantCode {
				t.Errorf("got error %q, want %q", got.code, tc.wantCode)
			}
		})
	}
}

func TestMiddlewareKeysUnavailable(t *testing.T) {
	key := generateKey(t, jose.ES256)
	is := newIssuer(t, key)
	is.down.Store(true)
	v := is.verifier(t, nil, nil)
	got := serve(t, resource.Middleware(v), "Bearer "+is.token(t, key, time.Now()))
	if got.status != http.StatusServiceUnavailable {
		t.Errorf("got status %d, want %d", got.status, http.StatusServiceUnavailable)
	}
	if got.code != "temporarily_unavailable" {
		t.Errorf("got error %q, want %q", got.code, "temporarily_unavailable")
	}
	if got.challenge != "" {
		t.Errorf("got WWW-Authenticate %q, want none: the token is not at fault", got.challenge)
	}
}

func TestRequire(t *testing.T) {
	key := generateKey(t, jose.ES256)
	v := newStaticVerifier(t, key, nil)
	raw := mint(t, key, staticIssuer, time.Now(), func(c *jose.Claims) {
		c.Roles = []string{"user"}
		c.Scope = "orders:read"
	})
	denyAll := func(context.Context, *resource.Principal) error { return errors.New("custom denial") }
	tests := []struct {
		name          string
		authz         resource.Authorizer
		wantStatus    int
		wantChallenge string
		wantCode      string
	}{
		{name: "role held", authz: resource.RequireRole("admin", "user"), wantStatus: http.StatusNoContent},
		{name: "scope held", authz: resource.RequireScope("orders:read"), wantStatus: http.StatusNoContent},
		{name: "role missing", authz: resource.RequireRole("admin"), wantStatus: http.StatusForbidden, wantCode: "access_denied"},
		{
			name: "scope missing", authz: resource.RequireScope("orders:read", "orders:write"),
			wantStatus: http.StatusForbidden, wantCode: "insufficient_scope",
			wantChallenge: `Bearer realm="gatehouse", error="insufficient_scope", error_description="missing scope: orders:write", scope="orders:write"`,
		},
		{name: "custom error", authz: denyAll, wantStatus: http.StatusForbidden, wantCode: "access_denied"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wrap := func(next http.Handler) http.Handler {
				return resource.Middleware(v)(resource.Require(tc.authz, next))
			}
			got := serve(t, wrap, "Bearer "+raw)
			if got.status != tc.wantStatus {
				t.Fatalf("got status %d, want %d", got.status, tc.wantStatus)
			}
			if got.challenge != tc.wantChallenge {
				t.Errorf("got WWW-Authenticate %q, want %q", got.challenge, tc.wantChallenge)
			}
			if got.code != tc.wantCode {
				t.Errorf("got error %q, want %q", got.code, tc.wantCode)
			}
		})
	}
}

func TestRequireWithoutMiddleware(t *testing.T) {
	got := serve(t, func(next http.Handler) http.Handler {
		return resource.Require(resource.RequireRole("user"), next)
	}, "")
	if got.status != http.StatusUnauthorized {
		t.Errorf("got status %d, want %d", got.status, http.StatusUnauthorized)
	}
	if got.challenge != `Bearer realm="gatehouse"` {
		t.Errorf("got WWW-Authenticate %q, want %q", got.challenge, `Bearer realm="gatehouse"`)
	}
}

func TestAuthorizers(t *testing.T) {
	p := &resource.Principal{Subject: "alice", Roles: []string{"user"}, Scopes: []string{"orders:read"}}
	var (
		user    = resource.RequireRole("user")
		admin   = resource.RequireRole("admin")
		read    = resource.RequireScope("orders:read")
		write   = resource.RequireScope("orders:write")
		noRoles = resource.RequireRole()
		noScope = resource.RequireScope()
	)
	tests := []struct {
		name      string
		authz     resource.Authorizer
		principal *resource.Principal
		wantErr   error // nil: allowed
		wantScope []string
	}{
		{name: "role", authz: user, principal: p},
		{name: "one of the roles", authz: resource.RequireRole("admin", "user"), principal: p},
		{name: "no role", authz: admin, principal: p, wantErr: resource.ErrForbidden},
		{name: "no roles listed", authz: noRoles, principal: p, wantErr: resource.ErrForbidden},
		{name: "scope", authz: read, principal: p},
		{name: "no scopes listed", authz: noScope, principal: p},
		{name: "missing scopes", authz: resource.RequireScope("orders:write", "orders:read", "admin"), principal: p, wantErr: resource.ErrForbidden, wantScope: []string{"orders:write", "admin"}},
		{name: "role, no principal", authz: user, wantErr: resource.ErrUnauthenticated},
		{name: "scope, no principal", authz: read, wantErr: resource.ErrUnauthenticated},
		{name: "AllOf empty", authz: resource.AllOf(), principal: p},
		{name: "AllOf all allow", authz: resource.AllOf(user, read), principal: p},
		{name: "AllOf first denies", authz: resource.AllOf(admin, write), principal: p, wantErr: resource.ErrForbidden},
		{name: "AllOf second denies", authz: resource.AllOf(user, write), principal: p, wantErr: resource.ErrForbidden, wantScope: []string{"orders:write"}},
		{name: "AllOf no principal", authz: resource.AllOf(user, read), wantErr: resource.ErrUnauthenticated},
		{name: "AnyOf empty", authz: resource.AnyOf(), principal: p, wantErr: resource.ErrForbidden},
		{name: "AnyOf first allows", authz: resource.AnyOf(user, write), principal: p},
		{name: "AnyOf second allows", authz: resource.AnyOf(admin, read), principal: p},
		{name: "AnyOf none allows, first denial", authz: resource.AnyOf(write, admin), principal: p, wantErr: resource.ErrForbidden, wantScope: []string{"orders:write"}},
		{name: "AnyOf none allows, role first", authz: resource.AnyOf(admin, write), principal: p, wantErr: resource.ErrForbidden},
		{name: "nested", authz: resource.AnyOf(admin, resource.AllOf(user, read)), principal: p},
		{name: "nested denies", authz: resource.AllOf(user, resource.AnyOf(admin, write)), principal: p, wantErr: resource.ErrForbidden},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.authz(t.Context(), tc.principal)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("got %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("got %v, want %v", err, tc.wantErr)
			}
			scopeErr, isScope := errors.AsType[*resource.ScopeError](err)
			if got, want := isScope, tc.wantScope != nil; got != want {
				t.Fatalf("got *ScopeError %v (%v), want %v", got, err, want)
			}
			if isScope && strings.Join(scopeErr.Missing, " ") != strings.Join(tc.wantScope, " ") {
				t.Errorf("got missing %v, want %v", scopeErr.Missing, tc.wantScope)
			}
		})
	}
}

func TestBearerToken(t *testing.T) {
	tests := []struct {
		name   string
		header []string
		want   string
		wantOK bool
	}{
		{name: "bearer", header: []string{"Bearer abc"}, want: "abc", wantOK: true},
		{name: "lower case", header: []string{"bearer abc"}, want: "abc", wantOK: true},
		{name: "extra blanks", header: []string{"Bearer   abc"}, want: "abc", wantOK: true},
		{name: "none"},
		{name: "empty", header: []string{""}},
		{name: "basic", header: []string{"Basic abc"}},
		{name: "no token", header: []string{"Bearer "}},
		{name: "no separator", header: []string{"Bearerabc"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			for _, h := range tc.header {
				r.Header.Add("Authorization", h)
			}
			got, ok := resource.BearerToken(r)
			if got != tc.want || ok != tc.wantOK {
				t.Errorf("got (%q, %v), want (%q, %v)", got, ok, tc.want, tc.wantOK)
			}
		})
	}
}
