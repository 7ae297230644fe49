package gateway

import (
	"context"
	"net/http"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/oauth"
)

// Paths the gateway answers itself, on every listener it serves, before any
// route is matched.
const (
	healthPath = "/healthz" // the process is up: always 200
	readyPath  = "/readyz"  // Ready: 200, or 503 when tokens cannot be verified
)

// readyTimeout bounds the JWKS fetch a readiness probe may cause.
const readyTimeout = 5 * time.Second

// Ready reports whether the gateway can verify bearer tokens: nil once its
// verifier holds the issuer's keys (a resource.Verifier keeps them while the
// issuer is down), else the error of fetching them now. A Config.Verifier
// without a Ready method is taken as ready.
func (g *Gateway) Ready(ctx context.Context) error {
	if r, ok := g.jwt.(interface{ Ready(context.Context) error }); ok {
		return r.Ready(ctx)
	}
	return nil
}

// builtins returns the handlers of the paths the gateway answers itself.
func (g *Gateway) builtins() map[string]http.Handler {
	h := map[string]http.Handler{
		healthPath: getOnly(func(w http.ResponseWriter, r *http.Request) {
			oauth.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		}),
		readyPath: getOnly(g.serveReady),
	}
	if g.phantom != nil {
		h[g.cfg.Opaque.JWKSPath] = getOnly(g.phantom.serveJWKS)
	}
	return h
}

func (g *Gateway) serveReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	if err := g.Ready(ctx); err != nil {
		g.cfg.Logger.WarnContext(r.Context(), "not ready", "err", err)
		oauth.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable"})
		return
	}
	oauth.WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// getOnly answers methods other than GET and HEAD with 405.
func getOnly(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, &oauth.Error{Code: oauth.ErrInvalidRequest, Description: "use GET", Status: http.StatusMethodNotAllowed})
			return
		}
		h(w, r)
	})
}
