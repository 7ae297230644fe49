package outbound_test

import (
	"net/http"

	"github.com/gatehouse-dev/gatehouse/outbound"
)

// A service calls another on behalf of its caller: the caller's token is
// exchanged for one whose audience is the callee.
func ExampleTransport() {
	client := &http.Client{Transport: &outbound.Transport{
		Source: &outbound.Exchange{
			TokenURL:     "https://auth.example.com/oauth2/token",
			ClientID:     "orders",
			ClientSecret: "secret-from-your-secret-store",
			Audience:     "consumers",
		},
	}}
	// In a handler wrapped by resource.Middleware, pass the request's context:
	//   req, _ := http.NewRequestWithContext(r.Context(), "GET", consumersURL, nil)
	//   resp, err := client.Do(req)
	_ = client
}
