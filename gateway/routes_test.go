package gateway

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestPatternRoutes: ServeMux patterns next to prefixes. Of the pattern
// routes, the most specific matching pattern is the candidate; between it
// and the prefix routes, config order decides.
func TestPatternRoutes(t *testing.T) {
	fx := newFixture(t)
	names := []string{"item", "new", "any_method_item", "orders", "files", "exact_root", "host", "api", "late_pattern"}
	ups := map[string]*upstream{}
	for _, n := range names {
		ups[n] = newUpstream(t, n)
	}
	public := []Rule{{Public: true}}
	g := fx.gateway(t, []Route{
		{Name: "item", Pattern: "GET /api/orders/{id}", Upstream: ups["item"].URL, StripPrefix: "/api", Rules: public},
		{Pattern: "GET /api/orders/new", Upstream: ups["new"].URL, Rules: public},
		{Pattern: "/api/orders/{id}", Upstream: ups["any_method_item"].URL, Rules: public},
		{Prefix: "/api/orders", Upstream: ups["orders"].URL, Rules: public},
		{Pattern: "/files/{path...}", Upstream: ups["files"].URL, Rules: public},
		{Pattern: "/{$}", Upstream: ups["exact_root"].URL, Rules: public},
		{Pattern: "example.com/host/{x}", Upstream: ups["host"].URL, Rules: public},
		{Prefix: "/api", Upstream: ups["api"].URL, Rules: public},
		// After the prefix /api: reached only if /api did not match first.
		{Pattern: "/api/late/{x}", Upstream: ups["late_pattern"].URL, Rules: public},
	})
	tests := []struct {
		name, method, target, host string
		// wantUpstream is "" for 404.
		wantUpstream, wantPath string
	}{
		{name: "method_pattern", method: "GET", target: "/api/orders/7", wantUpstream: "item", wantPath: "/orders/7"},
		{name: "get_pattern_matches_head", method: "HEAD", target: "/api/orders/7", wantUpstream: "item"},
		{name: "other_method_less_specific_pattern", method: "DELETE", target: "/api/orders/7", wantUpstream: "any_method_item", wantPath: "/api/orders/7"},
		{name: "literal_beats_wildcard", method: "GET", target: "/api/orders/new", wantUpstream: "new", wantPath: "/api/orders/new"},
		{name: "literal_with_other_method", method: "DELETE", target: "/api/orders/new", wantUpstream: "any_method_item", wantPath: "/api/orders/new"},
		{name: "wildcard_is_one_segment", method: "GET", target: "/api/orders/7/lines", wantUpstream: "orders", wantPath: "/api/orders/7/lines"},
		{name: "prefix_for_collection", method: "POST", target: "/api/orders", wantUpstream: "orders", wantPath: "/api/orders"},
		{name: "escaped_space_in_wildcard", method: "GET", target: "/api/orders/a%20b", wantUpstream: "item", wantPath: "/orders/a b"},
		{name: "rest_wildcard", method: "PUT", target: "/files/a/b/c.txt", wantUpstream: "files", wantPath: "/files/a/b/c.txt"},
		{name: "rest_wildcard_empty", method: "GET", target: "/files/", wantUpstream: "files", wantPath: "/files/"},
		{name: "rest_wildcard_needs_slash", method: "GET", target: "/files"}, // ServeMux would redirect: no match
		{name: "exact_root", method: "GET", target: "/", wantUpstream: "exact_root", wantPath: "/"},
		{name: "host_pattern", method: "GET", target: "/host/1", wantUpstream: "host", wantPath: "/host/1"},
		{name: "host_pattern_other_host", method: "GET", target: "/host/1", host: "other.test"},
		{name: "prefix_before_later_pattern", method: "GET", target: "/api/late/1", wantUpstream: "api", wantPath: "/api/late/1"},
		{name: "unclean_path", method: "GET", target: "/api/orders/../orders/7"},
		{name: "encoded_slash_in_wildcard", method: "GET", target: "/api/orders/a%2Fb"},
		{name: "no_route", method: "GET", target: "/nothing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptestRequest(tt.method, tt.target, tt.host)
			w := serveRequest(g, r)
			if tt.wantUpstream == "" {
				if w.Code != http.StatusNotFound {
					t.Fatalf("got %d %s, want 404", w.Code, w.Body)
				}
				return
			}
			if w.Code != http.StatusOK {
				t.Fatalf("got %d %s, want 200", w.Code, w.Body)
			}
			if tt.method == http.MethodHead {
				if n := ups[tt.wantUpstream].count(); n == 0 {
					t.Errorf("got no request at %s, want the HEAD there", tt.wantUpstream)
				}
				return
			}
			e := decodeEcho(t, w)
			if e.Upstream != tt.wantUpstream || e.Path != tt.wantPath {
				t.Errorf("got %s %q, want %s %q", e.Upstream, e.Path, tt.wantUpstream, tt.wantPath)
			}
		})
	}
}

// TestPatternRouteRules: a pattern route's rules decide as a prefix
// route's do, for Bearer and Basic callers alike.
func TestPatternRouteRules(t *testing.T) {
	fx := newFixture(t)
	up := newUpstream(t, "svc")
	g := fx.gateway(t, []Route{
		{Pattern: "DELETE /api/orders/{id}", Upstream: up.URL, Rules: []Rule{{Roles: []string{"admin"}}}},
		{Pattern: "/api/orders/{id}", Upstream: up.URL, Rules: []Rule{{Methods: []string{"GET"}, Scopes: []string{"orders"}}}},
	})
	carolPass, alicePass := testUsers["carol"].password, testUsers["alice"].password
	tests := []struct {
		name, method, auth string
		wantStatus         int
	}{
		{name: "admin_deletes_bearer", method: "DELETE", auth: "Bearer " + fx.mintFor(t, "carol"), wantStatus: http.StatusOK},
		{name: "admin_deletes_basic", method: "DELETE", auth: basicHeader("carol", carolPass), wantStatus: http.StatusOK},
		{name: "consumer_cannot_delete_bearer", method: "DELETE", auth: "Bearer " + fx.mintFor(t, "alice"), wantStatus: http.StatusForbidden},
		{name: "consumer_cannot_delete_basic", method: "DELETE", auth: basicHeader("alice", alicePass), wantStatus: http.StatusForbidden},
		{name: "scope_reads", method: "GET", auth: basicHeader("alice", alicePass), wantStatus: http.StatusOK},
		{name: "no_scope", method: "GET", auth: "Bearer " + fx.mintFor(t, "olga"), wantStatus: http.StatusForbidden},
		{name: "method_without_rule", method: "PUT", auth: "Bearer " + fx.mintFor(t, "carol"), wantStatus: http.StatusForbidden},
		{name: "anonymous", method: "GET", wantStatus: http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if w := serve(t, g, tt.method, "/api/orders/7", tt.auth, nil); w.Code != tt.wantStatus {
				t.Fatalf("got %d %s, want %d", w.Code, w.Body, tt.wantStatus)
			}
		})
	}
}

// TestValidate: every problem is reported at once, route problems as
// *RouteError naming the route (and rule).
func TestValidate(t *testing.T) {
	up := "http://127.0.0.1:1"
	valid := func() Config {
		return Config{Issuer: testIssuer, Audience: []string{testAudience}, Routes: []Route{{Prefix: "/a", Upstream: up}}}
	}
	type routeErr struct{ route, rule int }
	tests := []struct {
		name       string
		edit       func(*Config)
		wantErr    string     // in the message
		wantRoute  *routeErr  // a *RouteError with these indexes
		wantRoutes []routeErr // or several
	}{
		{name: "valid", edit: func(*Config) {}},
		{name: "no_issuer", edit: func(c *Config) { c.Issuer = "" }, wantErr: "issuer is required"},
		{name: "no_routes", edit: func(c *Config) { c.Routes = nil }, wantErr: "at least one route"},
		{name: "secret_without_id", edit: func(c *Config) { c.ClientSecret = "s" }, wantErr: "go together"},
		{name: "auth_method", edit: func(c *Config) { c.TokenEndpointAuthMethod = "private_key_jwt" }, wantErr: "token_endpoint_auth_method"},
		{name: "empty_type", edit: func(c *Config) { c.AccessTokenTypes = []string{""} }, wantErr: "empty type"},
		{name: "negative_timeout", edit: func(c *Config) { c.UpstreamTimeout = -time.Second }, wantErr: "cannot be negative"},
		{name: "negative_burst", edit: func(c *Config) { c.RateLimit = RateLimit{Rate: 1, Burst: -1} }, wantErr: "rate_limit"},
		{name: "opaque_without_client", edit: func(c *Config) { c.Opaque = &Opaque{Issuer: "https://gw"} }, wantErr: "client_id and client_secret are required"},
		{name: "opaque_without_issuer", edit: func(c *Config) { c.ClientID, c.ClientSecret, c.Opaque = "gw", "s", &Opaque{} },
			wantErr: "phantom-token issuer is required"},
		{name: "opaque_same_issuer", edit: func(c *Config) { c.ClientID, c.ClientSecret, c.Opaque = "gw", "s", &Opaque{Issuer: testIssuer} },
			wantErr: "must differ"},
		{name: "opaque_long_ttl", edit: func(c *Config) {
			c.ClientID, c.ClientSecret, c.Opaque = "gw", "s", &Opaque{Issuer: "https://gw", TTL: 2 * time.Minute}
		}, wantErr: "at most 1m0s"},
		{name: "opaque_jwks_path", edit: func(c *Config) {
			c.ClientID, c.ClientSecret, c.Opaque = "gw", "s", &Opaque{Issuer: "https://gw", JWKSPath: "/readyz"}
		}, wantErr: "jwks path"},
		{name: "prefix_and_pattern", edit: func(c *Config) { c.Routes[0].Pattern = "/b" }, wantErr: "exactly one of prefix and pattern",
			wantRoute: &routeErr{1, 0}},
		{name: "neither", edit: func(c *Config) { c.Routes[0].Prefix = "" }, wantErr: "exactly one", wantRoute: &routeErr{1, 0}},
		{name: "unclean_prefix", edit: func(c *Config) { c.Routes[0].Prefix = "/a/../b" }, wantErr: "clean path", wantRoute: &routeErr{1, 0}},
		{name: "bad_pattern", edit: func(c *Config) { c.Routes[0] = Route{Pattern: "GET /a/{", Upstream: up} }, wantErr: "bad wildcard",
			wantRoute: &routeErr{1, 0}},
		{name: "unclean_pattern", edit: func(c *Config) { c.Routes[0] = Route{Pattern: "/a//{x}", Upstream: up} }, wantErr: "clean path",
			wantRoute: &routeErr{1, 0}},
		{name: "pattern_dot_dot", edit: func(c *Config) { c.Routes[0] = Route{Pattern: "GET /a/..", Upstream: up} }, wantErr: "clean path",
			wantRoute: &routeErr{1, 0}},
		{name: "conflicting_patterns", edit: func(c *Config) {
			c.Routes = append(c.Routes, Route{Pattern: "/o/{id}/x", Upstream: up}, Route{Pattern: "/o/x/{id}", Upstream: up})
		}, wantErr: "neither is more specific", wantRoute: &routeErr{3, 0}},
		{name: "duplicate_patterns", edit: func(c *Config) {
			c.Routes = append(c.Routes, Route{Pattern: "GET /o/{id}", Upstream: up}, Route{Pattern: "GET /o/{n}", Upstream: up})
		}, wantErr: "matches the same requests", wantRoute: &routeErr{3, 0}},
		{name: "conflict_message_names_no_source", edit: func(c *Config) {
			c.Routes = append(c.Routes, Route{Pattern: "/o", Upstream: up}, Route{Pattern: "/o", Upstream: up})
		}, wantErr: `pattern "/o" conflicts with pattern "/o": /o matches the same requests as /o`, wantRoute: &routeErr{3, 0}},
		{name: "strip_prefix_of_pattern", edit: func(c *Config) {
			c.Routes[0] = Route{Pattern: "GET /api/o/{id}", StripPrefix: "/api/o/x", Upstream: up}
		},
			wantErr: `strip_prefix "/api/o/x" is not a prefix of "/api/o/"`, wantRoute: &routeErr{1, 0}},
		{name: "bad_upstream", edit: func(c *Config) { c.Routes[0].Upstream = "ftp://x" }, wantErr: "http or https", wantRoute: &routeErr{1, 0}},
		{name: "audience_without_opaque", edit: func(c *Config) { c.Routes[0].Audience = "orders" }, wantErr: "phantom tokens",
			wantRoute: &routeErr{1, 0}},
		{name: "bad_route_rate", edit: func(c *Config) { c.Routes[0].RateLimit = &RateLimit{Rate: 1, Burst: -2} }, wantErr: "rate_limit",
			wantRoute: &routeErr{1, 0}},
		{name: "rule_method", edit: func(c *Config) {
			c.Routes[0].Rules = []Rule{{Methods: []string{"GET"}}, {Methods: []string{"get"}}}
		}, wantErr: `rule 2: unknown method "get"`, wantRoute: &routeErr{1, 2}},
		{name: "public_with_roles", edit: func(c *Config) { c.Routes[0].Rules = []Rule{{Public: true, Roles: []string{"a"}}} },
			wantErr: "public rule", wantRoute: &routeErr{1, 1}},
		{name: "every_problem_at_once", edit: func(c *Config) {
			c.Issuer = ""
			c.Routes = append(c.Routes, Route{Prefix: "x", Upstream: up}, Route{Prefix: "/y", Upstream: up, Rules: []Rule{{Methods: []string{"YELL"}}}})
		}, wantErr: "issuer is required", wantRoutes: []routeErr{{2, 0}, {3, 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.edit(&c)
			err := c.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("got %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("got %v, want an error containing %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "registered at") {
				t.Errorf("got %v, which names the gateway's source, not the configuration", err)
			}
			want := tt.wantRoutes
			if tt.wantRoute != nil {
				want = append(want, *tt.wantRoute)
			}
			got := routeErrors(err)
			for _, w := range want {
				found := false
				for _, re := range got {
					found = found || re.Route == w.route && re.Rule == w.rule
				}
				if !found {
					t.Errorf("got route errors %v, want one for route %d rule %d", got, w.route, w.rule)
				}
			}
			if _, err := New(c); err == nil {
				t.Errorf("New accepted a config Validate refuses")
			}
		})
	}
}

// routeErrors returns the *RouteError values joined in err.
func routeErrors(err error) []*RouteError {
	var out []*RouteError
	var walk func(error)
	walk = func(err error) {
		if re, ok := err.(*RouteError); ok {
			out = append(out, re)
			return
		}
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	return out
}

// httptestRequest is a request for target, to host if not empty.
func httptestRequest(method, target, host string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	if host != "" {
		r.Host = host
	}
	return r
}

func serveRequest(g http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	g.ServeHTTP(w, r)
	return w
}
