package gateway

import (
	"bufio"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/oauth"
)

// exchange is one request passing through the gateway, as the access log and
// the metrics see it. It wraps the ResponseWriter to learn the status; the
// request path fills in the route, the authentication method, the subject
// and, when the gateway answers itself, the outcome.
type exchange struct {
	http.ResponseWriter
	g     *Gateway
	r     *http.Request
	start time.Time

	status  int
	route   string
	auth    string
	subject string
	outcome string
}

// begin starts observing r; end writes the access log line and the metrics.
func (g *Gateway) begin(w http.ResponseWriter, r *http.Request) *exchange {
	auth := authMethod(r)
	if auth == authNone && g.sessions != nil && g.sessions.hasCookie(r) {
		auth = authSession
	}
	return &exchange{ResponseWriter: w, g: g, r: r, start: time.Now(), route: "none", auth: auth}
}

func (x *exchange) end() {
	if x.outcome == "" {
		x.outcome = outcomeProxied
	}
	if x.status == 0 {
		x.status = http.StatusOK // net/http's answer when nothing was written
	}
	x.g.metrics.requests.WithLabelValues(x.route, x.auth, x.outcome).Inc()
	if log := x.g.cfg.AccessLog; log != nil {
		log.LogAttrs(x.r.Context(), slog.LevelInfo, "request",
			slog.String("method", x.r.Method), slog.String("path", x.r.URL.Path), slog.String("route", x.route),
			slog.Int("status", x.status), slog.Duration("duration", time.Since(x.start)),
			slog.String("auth", x.auth), slog.String("subject", x.subject), slog.String("outcome", x.outcome),
			slog.String("remote", x.r.RemoteAddr))
	}
}

// reply answers the request from the gateway itself with e, recording why.
func (x *exchange) reply(outcome string, e *oauth.Error) {
	x.outcome = outcome
	writeError(x, e)
}

func (x *exchange) WriteHeader(code int) {
	if x.status == 0 && code >= 200 { // 1xx responses are not the final status
		x.status = code
	}
	x.ResponseWriter.WriteHeader(code)
}

func (x *exchange) Write(b []byte) (int, error) {
	if x.status == 0 {
		x.status = http.StatusOK
	}
	return x.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController (and ReverseProxy's flushing) reach the
// underlying writer.
func (x *exchange) Unwrap() http.ResponseWriter { return x.ResponseWriter }

// Hijack hands the connection over for a protocol upgrade (WebSocket),
// recording the 101 that ReverseProxy writes on the raw connection. net/http
// clears the listener's read and write deadlines on hijack, so an upgraded
// connection lives as long as the client and the upstream keep it.
func (x *exchange) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(x.ResponseWriter).Hijack()
	if err == nil {
		x.status = http.StatusSwitchingProtocols
	}
	return conn, brw, err
}

// authMethod names how r tries to authenticate, from its Authorization
// header alone.
func authMethod(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if h == "" {
		return authNone
	}
	scheme, rest, _ := strings.Cut(h, " ")
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		if isJWT(strings.TrimLeft(rest, " ")) {
			return authBearer
		}
		return authOpaque
	case strings.EqualFold(scheme, "Basic"):
		return authBasic
	default:
		return authOther
	}
}

// isJWT reports whether raw has the shape of a compact JWS: three parts.
func isJWT(raw string) bool { return strings.Count(raw, ".") == 2 }
