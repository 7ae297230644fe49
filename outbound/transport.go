package outbound

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/gatehouse-dev/gatehouse/resource"
)

// TokenSource returns the access token to send with a request made in ctx.
// Implementations are safe for concurrent use.
type TokenSource interface {
	Token(ctx context.Context) (string, error)
}

// Transport is an http.RoundTripper that adds "Authorization: Bearer
// <token>" from Source to each request, on a clone (the caller's request is
// never modified, per the RoundTripper contract).
type Transport struct {
	// Source supplies the token for each request. Required.
	Source TokenSource
	// Base carries the request; if nil, http.DefaultTransport.
	Base http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	token, err := t.Source.Token(req.Context())
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, fmt.Errorf("outbound: %w", err)
	}
	out := req.Clone(req.Context())
	out.Header.Set("Authorization", "Bearer "+token)
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(out)
}

// ErrNoCaller reports a request context without a verified caller, so there
// is no token to relay or exchange.
var ErrNoCaller = errors.New("outbound: no verified caller in the context")

// Relay is a TokenSource that passes on the token of the caller that
// resource.Middleware verified for the incoming request.
var Relay TokenSource = relay{}

type relay struct{}

func (relay) Token(ctx context.Context) (string, error) {
	p := resource.FromContext(ctx)
	if p == nil || p.Token == "" {
		return "", ErrNoCaller
	}
	return p.Token, nil
}
