package gateway

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// FuzzCookieHeader runs arbitrary Cookie headers through the cookie reader,
// the stripper and the whole gateway. The stripped header must hold no
// session cookie and keep every other pair in order; what the reader finds
// must be in the header; the gateway must answer without a 5xx, and any
// redirect must stay on its origin. The seed corpus in
// testdata/fuzz/FuzzCookieHeader holds duplicates, odd spacing, quoting and
// case tricks.
func FuzzCookieHeader(f *testing.F) {
	fx := newFixture(f)
	as := newSessionAS(f, fx)
	up := newRecorder(f)
	g := fx.sessionGateway(f, as, []Route{{Prefix: "/api", Upstream: up.URL}})
	at, rt := as.login("alice")
	for _, s := range []string{
		hostCookies.access + "=" + at + "; " + hostCookies.refresh + "=" + rt,
		"a=1; " + hostCookies.access + "=x; b=2",
		hostCookies.refresh + "=" + rt,
		`__Host-gh_at="quoted"; __HOST-GH_RT=upper`,
		"gh_at=dev; gh_rt=dev; theme=dark",
		";;; =; __Host-gh_at; __Host-gh_at=",
	} {
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, header string, navigate bool) {
		h := http.Header{"Cookie": {header}}
		if v, ok := readCookie(h, hostCookies.access); ok && !strings.Contains(header, hostCookies.access+"="+v) {
			t.Fatalf("read %q from %q, which does not hold it", v, header)
		}
		stripped := h.Clone()
		stripSessionCookies(stripped)
		var kept []string
		for _, line := range stripped["Cookie"] {
			for pair := range strings.SplitSeq(line, ";") {
				pair = strings.Trim(pair, " \t")
				if pair == "" {
					continue
				}
				name, _, _ := strings.Cut(pair, "=")
				if sessionCookie(strings.Trim(name, " \t")) {
					t.Fatalf("stripped %q to %q, which keeps %q", header, stripped["Cookie"], pair)
				}
				kept = append(kept, pair)
			}
		}
		var want []string
		for pair := range strings.SplitSeq(header, ";") {
			pair = strings.Trim(pair, " \t")
			if name, _, _ := strings.Cut(pair, "="); pair != "" && !sessionCookie(strings.Trim(name, " \t")) {
				want = append(want, pair)
			}
		}
		if strings.Join(kept, ";") != strings.Join(want, ";") {
			t.Fatalf("stripped %q to %q, want the other pairs %q kept in order", header, kept, want)
		}

		r := newRequest(http.MethodGet, publicURL+"/api/x", nil)
		r.Header["Cookie"] = []string{header}
		if navigate {
			r.Header.Set("Sec-Fetch-Mode", "navigate")
		}
		w := serveRecorded(g, r)
		if w.Code >= 500 {
			t.Fatalf("Cookie %q: got %d %s", header, w.Code, w.Body)
		}
		if loc := w.Header().Get("Location"); loc != "" && !onOrigin(loc) {
			t.Fatalf("Cookie %q: redirect to %q leaves the origin", header, loc)
		}
	})
}

// FuzzNext checks the login redirect: whatever next is, the browser is sent
// to a path of the gateway's origin, as a browser would resolve it.
func FuzzNext(f *testing.F) {
	fx := newFixture(f)
	as := newSessionAS(f, fx)
	g := fx.sessionGateway(f, as, []Route{{Prefix: "/api", Upstream: newRecorder(f).URL}})
	for _, s := range []string{"/api/orders?x=1", "//evil.example", "https://evil.example", "/\\evil.example",
		"/\t/evil.example", "/%2F/evil.example", "/.//evil.example", "\\/evil.example", "/login", "///evil.example"} {
		f.Add(s)
	}
	password := testUsers["alice"].password
	f.Fuzz(func(t *testing.T, next string) {
		got := (&sessions{sc: &SessionConfig{LoginPath: "/login", LogoutPath: "/logout"}}).safeNext(next)
		if got != "/" && got != next {
			t.Fatalf("safeNext(%q) = %q, want next itself or /", next, got)
		}
		if !onOrigin(got) {
			t.Fatalf("safeNext(%q) = %q leaves the origin", next, got)
		}
		w := postLogin(g, url.Values{"username": {"alice"}, "password": {password}, "next": {next}}, "",
			with(nil, "Sec-Fetch-Site", "same-origin"))
		if w.Code != http.StatusSeeOther {
			t.Fatalf("next %q: got %d %s, want 303", next, w.Code, w.Body)
		}
		if loc := w.Header().Get("Location"); !onOrigin(loc) {
			t.Fatalf("next %q: redirect to %q leaves the origin", next, loc)
		}
	})
}

// onOrigin reports whether a browser at publicURL that follows the
// redirect loc stays on publicURL's origin. It models the WHATWG URL
// parser's leniency: tabs and newlines are dropped, and backslashes are
// slashes in http(s) URLs.
func onOrigin(loc string) bool {
	loc = strings.NewReplacer("\t", "", "\n", "", "\r", "", "\\", "/").Replace(loc)
	loc = strings.TrimLeft(loc, "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f ")
	if !strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, "//") {
		return false
	}
	base, _ := url.Parse(publicURL + "/some/page")
	ref, err := url.Parse(loc)
	if err != nil {
		return false
	}
	u := base.ResolveReference(ref)
	return u.Scheme == "https" && u.Host == "gw.example.test"
}
