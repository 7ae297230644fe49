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

// NewConsumers returns the consumers service as a handler that accepts only
// requests with an access token v accepts:
//
//	GET /consumers/me  the caller's subject, username and roles
func NewConsumers(v resource.TokenVerifier) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /consumers/me", func(w http.ResponseWriter, r *http.Request) {
		p := resource.FromContext(r.Context())
		roles := p.Roles
		if roles == nil {
			roles = []string{}
		}
		writeJSON(w, http.StatusOK, Consumer{Subject: p.Subject, Username: p.Username, Roles: roles, ClientID: p.ClientID})
	})
	return resource.Middleware(v)(mux)
}
