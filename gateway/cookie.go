package gateway

import (
	"net/http"
	"strings"
)

// maxCookieValue bounds a session cookie's value; browsers keep cookies of
// up to 4096 bytes.
const maxCookieValue = 4096

// readCookie returns the value of the first cookie named name in the Cookie
// headers of h (RFC 6265 §5.4 sends one header; HTTP/2 may split it). It
// reads the header itself instead of through http.Request.Cookie so that it
// sees exactly the pairs that stripSessionCookies removes. A value that is
// empty, quoted, too long, or holds a byte a token never does counts as
// absent.
func readCookie(h http.Header, name string) (string, bool) {
	for _, line := range h["Cookie"] {
		for len(line) > 0 {
			var pair string
			pair, line, _ = strings.Cut(line, ";")
			n, v, ok := strings.Cut(strings.Trim(pair, " \t"), "=")
			if ok && n == name {
				if !tokenValue(v) {
					return "", false
				}
				return v, true
			}
		}
	}
	return "", false
}

// tokenValue reports whether v may be a token we set: base64url, base64 or
// JWT characters, and not too long.
func tokenValue(v string) bool {
	if v == "" || len(v) > maxCookieValue {
		return false
	}
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '_', c == '.', c == '~', c == '+', c == '/', c == '=':
		default:
			return false
		}
	}
	return true
}

// sessionCookie reports whether a cookie name is one of the gateway's, in
// either spelling and in any case: an upstream must never see them.
func sessionCookie(name string) bool {
	name = strings.ToLower(name)
	name = strings.TrimPrefix(name, "__host-")
	return name == "gh_at" || name == "gh_rt" || name == "gh_csrf"
}

// stripSessionCookies removes the gateway's cookies from the Cookie headers
// of h, keeping every other pair as the client sent it. A header left empty
// is removed.
func stripSessionCookies(h http.Header) {
	lines, ok := h["Cookie"]
	if !ok {
		return
	}
	kept := lines[:0:0]
	for _, line := range lines {
		if !containsGH(line) {
			kept = append(kept, line)
			continue
		}
		var b strings.Builder
		for rest := line; len(rest) > 0; {
			var pair string
			pair, rest, _ = strings.Cut(rest, ";")
			pair = strings.Trim(pair, " \t")
			if pair == "" {
				continue
			}
			if n, _, _ := strings.Cut(pair, "="); sessionCookie(strings.Trim(n, " \t")) {
				continue
			}
			if b.Len() > 0 {
				b.WriteString("; ")
			}
			b.WriteString(pair)
		}
		if b.Len() > 0 {
			kept = append(kept, b.String())
		}
	}
	if len(kept) == 0 {
		delete(h, "Cookie")
		return
	}
	h["Cookie"] = kept
}

// containsGH reports whether s contains "gh_" in any case, without the
// allocation of strings.ToLower: most Cookie headers hold no session cookie.
func containsGH(s string) bool {
	for i := 0; i+3 <= len(s); i++ {
		if s[i]|0x20 == 'g' && s[i+1]|0x20 == 'h' && s[i+2] == '_' {
			return true
		}
	}
	return false
}
