package gateway

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// FuzzMatch runs arbitrary request targets, parsed the way net/http parses
// them, through the route matcher, with each of a few methods. A route may
// only be chosen for a clean path (no "." or ".." segment, no empty segment,
// no backslash, no encoded slash); for a clean path the choice must be the
// reference's: the first route in config order that is either a prefix
// route whose prefix is the path or a segment-aligned ancestor of it, or the
// winning pattern route — the first pattern of patternPrecedence (written
// by hand from ServeMux's rules, not computed by ServeMux) that matches on
// its own. The seed corpus in testdata/fuzz/FuzzMatch holds traversal and
// encoding tricks.
func FuzzMatch(f *testing.F) {
	fx := newFixture(f)
	up := "http://127.0.0.1:1"
	g := fx.gateway(f, []Route{
		{Prefix: "/api/admin/orders", Upstream: up, StripPrefix: "/api/admin"},
		{Pattern: "GET /api/orders/new", Upstream: up},
		{Pattern: "GET /api/orders/{id}", Upstream: up},
		{Prefix: "/api/orders", Upstream: up, StripPrefix: "/api"},
		{Prefix: "/api/orders/special", Upstream: up},
		{Pattern: "/api/orders/{id}", Upstream: up}, // wins among patterns for DELETE, loses to the prefix above
		{Prefix: "/static/", Upstream: up},
		{Pattern: "/files/{path...}", Upstream: up},
		{Pattern: "gw/hosted/{x}", Upstream: up},
		{Pattern: "/hosted/{x}", Upstream: up},
		{Pattern: "/{$}", Upstream: up},
		{Prefix: "/api", Upstream: up},
	})
	alone := map[string]*http.ServeMux{} // each pattern in a mux of its own
	for _, p := range patternPrecedence {
		alone[p] = http.NewServeMux()
		alone[p].Handle(p, http.NotFoundHandler())
	}
	for _, s := range []string{"/api/orders/7", "/api/orders/../admin/orders", "//api/orders", "/api/orders%2F7",
		"/api/orders/..%5Cadmin", "/static/a.js", "/api/ordersX?x=1", "/api/orders/new", "/files/a/b", "/files",
		"/hosted/1", "/", "/api/orders/7/", "/api/orders/%6Eew"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		for _, method := range []string{"GET", "HEAD", "DELETE"} {
			r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(method + " " + target + " HTTP/1.1\r\nHost: gw\r\n\r\n")))
			if err != nil {
				return // net/http would have refused it before the gateway
			}
			got := g.match(r)
			p := r.URL.Path
			if !clean(p, r.URL.RawPath) {
				if got != nil {
					t.Fatalf("%s %q (raw %q): got route %q, want none for a path that is not clean", method, p, r.URL.RawPath, labelOf(got))
				}
				continue
			}
			if want := referenceMatch(g.routes, r, alone); got != want {
				t.Fatalf("%s %q: got %v, want %v", method, p, labelOf(got), labelOf(want))
			}
		}
	})
}

// patternPrecedence lists FuzzMatch's patterns from most to least specific
// where they overlap, by ServeMux's documented rules: a longer literal path
// beats a wildcard, a method beats none, a host beats none.
var patternPrecedence = []string{"GET /api/orders/new", "GET /api/orders/{id}", "/api/orders/{id}",
	"/files/{path...}", "gw/hosted/{x}", "/hosted/{x}", "/{$}"}

// referenceMatch is the specification of routing for clean paths.
func referenceMatch(routes []*route, r *http.Request, alone map[string]*http.ServeMux) *route {
	winner := ""
	for _, p := range patternPrecedence {
		if _, pattern := alone[p].Handler(r); pattern == p && isNotFound(alone[p], r) {
			winner = p
			break
		}
	}
	for _, rt := range routes {
		if rt.Pattern != "" && rt.Pattern == winner {
			return rt
		}
		pre := strings.TrimSuffix(rt.Prefix, "/")
		if rt.Prefix != "" && (r.URL.Path == rt.Prefix || strings.HasPrefix(r.URL.Path, pre+"/")) {
			return rt
		}
	}
	return nil
}

// isNotFound reports whether mux would serve r with its registered handler
// (the NotFoundHandler), not a redirect or a 405 of its own.
func isNotFound(mux *http.ServeMux, r *http.Request) bool {
	w := httptest.NewRecorder()
	h, _ := mux.Handler(r)
	h.ServeHTTP(w, r)
	return w.Code == http.StatusNotFound
}

func labelOf(rt *route) string {
	if rt == nil {
		return "no route"
	}
	return rt.label()
}

// clean reports whether a decoded path has nothing an upstream could
// resolve differently from the gateway.
func clean(p, raw string) bool {
	if !strings.HasPrefix(p, "/") || strings.ContainsRune(p, '\\') {
		return false
	}
	lower := strings.ToLower(raw)
	if strings.Contains(lower, "%2f") || strings.Contains(lower, "%5c") {
		return false
	}
	segs := strings.Split(p[1:], "/")
	for i, s := range segs {
		if s == "." || s == ".." || s == "" && i != len(segs)-1 {
			return false
		}
	}
	return true
}

// FuzzAuthorizationHeader sends arbitrary Authorization header values
// through the whole gateway to a route that needs role consumer. The answer
// is 200, 401 or 403 (404 is allowed, though the path always has a route),
// never a 5xx or a panic, and a request that reaches the upstream carries a
// token the gateway's verifier accepts for a user with the role. The
// seed corpus in testdata/fuzz/FuzzAuthorizationHeader holds malformed Basic
// and Bearer values; valid ones for this run's key are added below.
func FuzzAuthorizationHeader(f *testing.F) {
	fx := newFixture(f)
	up := newUpstream(f, "svc")
	g := fx.gateway(f, []Route{{Prefix: "/api", Upstream: up.URL, Rules: []Rule{{Roles: []string{"consumer"}}}}})
	alice := fx.mintFor(f, "alice")
	f.Add("Bearer " + alice)
	f.Add("bearer  " + alice)
	f.Add("Bearer " + fx.mintFor(f, "olga")) // no consumer role: 403
	f.Add(basicHeader("alice", testUsers["alice"].password))
	f.Add(basicHeader("alice", "wrong"))
	f.Add("Basic " + base64.StdEncoding.EncodeToString([]byte("alice")))
	pub, err := json.Marshal(fx.key.Public())
	if err != nil {
		f.Fatal(err)
	}
	f.Add("Bearer " + forgeHS256(alice, pub))
	f.Add("Bearer " + forgeNone(alice))

	allowed := []int{http.StatusOK, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound}
	f.Fuzz(func(t *testing.T, authorization string) {
		before := up.count()
		r := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/api/x", nil)
		r.Header.Set("Authorization", authorization)
		w := httptest.NewRecorder()
		g.ServeHTTP(w, r)
		if !slices.Contains(allowed, w.Code) {
			t.Fatalf("Authorization %q: got %d %s, want one of %v", authorization, w.Code, w.Body, allowed)
		}
		if w.Code != http.StatusOK {
			if up.count() != before {
				t.Fatalf("Authorization %q: got %d but the upstream was called", authorization, w.Code)
			}
			return
		}
		auth := decodeEcho(t, w).Header.Get("Authorization")
		p, err := fx.verifier.Verify(t.Context(), strings.TrimPrefix(auth, "Bearer "))
		if err != nil || !p.HasRole("consumer") {
			t.Fatalf("Authorization %q: forwarded %q (%+v, %v), want a valid token with role consumer", authorization, auth, p, err)
		}
	})
}

// forgeHS256 re-signs a token's claims with HS256, keyed with the public
// key's JWK: the algorithm-confusion attack.
func forgeHS256(token string, publicKey []byte) string {
	parts := strings.Split(token, ".")
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"at+jwt"}`))
	m := hmac.New(sha256.New, publicKey)
	m.Write([]byte(header + "." + parts[1]))
	return header + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// forgeNone strips a token's signature and claims alg "none".
func forgeNone(token string) string {
	parts := strings.Split(token, ".")
	return base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"at+jwt"}`)) + "." + parts[1] + "."
}
