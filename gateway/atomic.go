package gateway

import (
	"net/http"
	"sync/atomic"

	"github.com/gatehouse-dev/gatehouse/internal/oauth"
)

// AtomicHandler serves each request with the Gateway stored in it last, so
// that a new configuration takes over without a restart: a request in
// flight finishes on the Gateway it started on, and the next one starts on
// the new Gateway. The zero value answers 503 until a Gateway is stored. It
// is safe for concurrent use.
type AtomicHandler struct {
	p atomic.Pointer[Gateway]
}

// Store makes g serve the requests that start from now on.
func (h *AtomicHandler) Store(g *Gateway) { h.p.Store(g) }

// Load returns the Gateway serving new requests, or nil.
func (h *AtomicHandler) Load() *Gateway { return h.p.Load() }

// ServeHTTP implements http.Handler.
func (h *AtomicHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g := h.p.Load()
	if g == nil {
		writeError(w, &oauth.Error{Code: oauth.ErrTemporarilyUnavailable, Description: "starting"})
		return
	}
	g.ServeHTTP(w, r)
}
