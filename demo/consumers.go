package demo

import (
	"net/http"

	"github.com/gatehouse-dev/gatehouse/resource"
)

// Consumer is what the consumers service knows of the caller: what its
// verified token says.
type Consumer struct {
	Subject  string   `json:"sub"`
	Username string   `json:"username"`
	Roles    []string `json:"roles"`
	ClientID string   `json:"client_id"`
}

// ConsumersConfig configures the consumers service.
type ConsumersConfig struct {
	// Verifier accepts the tokens of API clients (the gateway's audience).
	Verifier resource.TokenVerifier
	// ServiceVerifier accepts tokens whose audience is the consumers service
	// itself, as other services obtain by token exchange. If nil, the
	// validate endpoint is not served.
	ServiceVerifier resource.TokenVerifier
}

// NewConsumers returns the consumers service for API clients only:
//
//	GET /consumers/me  the caller's subject, username and roles
func NewConsumers(v resource.TokenVerifier) http.Handler {
	return NewConsumersWith(ConsumersConfig{Verifier: v})
}

// NewConsumersWith returns the consumers service:
//
//	GET /consumers/me              (API audience) the caller's subject, username and roles
//	GET /consumers/{sub}/validate  (audience: consumers) whether the token's
//	                               user is that consumer; for other services
//	                               calling with an exchanged token
func NewConsumersWith(cfg ConsumersConfig) http.Handler {
	mux := http.NewServeMux()
	me := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := resource.FromContext(r.Context())
		writeJSON(w, http.StatusOK, consumerOf(p))
	})
	mux.Handle("GET /consumers/me", resource.Middleware(cfg.Verifier)(me))
	if cfg.ServiceVerifier != nil {
		validate := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p := resource.FromContext(r.Context())
			if p.Subject != r.PathValue("sub") {
				resource.WriteError(w, resource.ErrForbidden)
				return
			}
			writeJSON(w, http.StatusOK, Validation{Consumer: consumerOf(p), Valid: true, Actor: p.Actor})
		})
		mux.Handle("GET /consumers/{sub}/validate", resource.Middleware(cfg.ServiceVerifier)(validate))
	}
	return mux
}

// Validation is the answer of the validate endpoint.
type Validation struct {
	Consumer
	Valid bool `json:"valid"`
	// Actor is the service that called on the consumer's behalf.
	Actor string `json:"actor,omitempty"`
}

func consumerOf(p *resource.Principal) Consumer {
	roles := p.Roles
	if roles == nil {
		roles = []string{}
	}
	return Consumer{Subject: p.Subject, Username: p.Username, Roles: roles, ClientID: p.ClientID}
}
