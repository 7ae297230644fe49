package resource_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/jose"
	"github.com/gatehouse-dev/gatehouse/resource"
)

// stub is a TokenVerifier that accepts one token and answers err for every
// other one, counting its calls.
type stub struct {
	accept string
	err    error
	calls  *int
}

func (s stub) Verify(_ context.Context, raw string) (*resource.Principal, error) {
	*s.calls++
	if raw == s.accept {
		return &resource.Principal{Subject: s.accept}, nil
	}
	return nil, s.err
}

func TestAnyVerifier(t *testing.T) {
	invalid := fmt.Errorf("%w: wrong issuer", resource.ErrInvalidToken)
	down := fmt.Errorf("%w: jwks: connection refused", resource.ErrKeysUnavailable)
	tests := []struct {
		name        string
		verifiers   []stub
		token       string
		wantSubject string
		wantErr     error // checked with errors.Is when wantSubject is ""
		notErr      error // must not match
		wantCalls   []int
	}{
		{name: "first_accepts", verifiers: []stub{{accept: "a", err: invalid}, {accept: "b", err: invalid}},
			token: "a", wantSubject: "a", wantCalls: []int{1, 0}},
		{name: "second_accepts", verifiers: []stub{{accept: "a", err: invalid}, {accept: "b", err: invalid}},
			token: "b", wantSubject: "b", wantCalls: []int{1, 1}},
		{name: "none_accepts", verifiers: []stub{{accept: "a", err: invalid}, {accept: "b", err: invalid}},
			token: "c", wantErr: invalid, wantCalls: []int{1, 1}},
		{name: "unavailable_then_accepts", verifiers: []stub{{accept: "a", err: down}, {accept: "b", err: invalid}},
			token: "b", wantSubject: "b", wantCalls: []int{1, 1}},
		{name: "unavailable_wins_over_invalid", verifiers: []stub{{accept: "a", err: invalid}, {accept: "b", err: down}},
			token: "c", wantErr: resource.ErrKeysUnavailable, notErr: resource.ErrInvalidToken, wantCalls: []int{1, 1}},
		{name: "empty", token: "a", wantErr: resource.ErrInvalidToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := make([]int, len(tt.verifiers))
			var any resource.AnyVerifier
			for i, s := range tt.verifiers {
				s.calls = &calls[i]
				any = append(any, s)
			}
			p, err := any.Verify(t.Context(), tt.token)
			if tt.wantSubject != "" {
				if err != nil || p.Subject != tt.wantSubject {
					t.Fatalf("got (%+v, %v), want subject %q", p, err, tt.wantSubject)
				}
			} else if p != nil || !errors.Is(err, tt.wantErr) || tt.notErr != nil && errors.Is(err, tt.notErr) {
				t.Fatalf("got (%+v, %v), want an error matching %v and not %v", p, err, tt.wantErr, tt.notErr)
			}
			for i, want := range tt.wantCalls {
				if calls[i] != want {
					t.Errorf("verifier %d: got %d calls, want %d", i, calls[i], want)
				}
			}
		})
	}
}

// TestAnyVerifierTwoIssuers chains two real Verifiers, as a service behind
// the gateway does for the authorization server's tokens and the gateway's
// phantom tokens: each issuer's tokens pass, and a token of one issuer
// signed with the other's key does not.
func TestAnyVerifierTwoIssuers(t *testing.T) {
	const gatewayIssuer = "https://gateway.example"
	asKey, gwKey := generateKey(t, jose.ES256), generateKey(t, jose.ES256)
	fromAS := newStaticVerifier(t, asKey, nil)
	fromGateway := newStaticVerifier(t, gwKey, func(c *resource.Config) { c.Issuer = gatewayIssuer })
	v := resource.AnyVerifier{fromAS, fromGateway}
	now := time.Now()
	tests := []struct {
		name, token, wantIssuer string
	}{
		{name: "authorization_server", token: mint(t, asKey, staticIssuer, now, nil), wantIssuer: staticIssuer},
		{name: "gateway", token: mint(t, gwKey, gatewayIssuer, now, nil), wantIssuer: gatewayIssuer},
		{name: "gateway_issuer_other_key", token: mint(t, asKey, gatewayIssuer, now, nil)},
		{name: "as_issuer_gateway_key", token: mint(t, gwKey, staticIssuer, now, nil)},
		{name: "third_issuer", token: mint(t, asKey, "https://evil.example", now, nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := v.Verify(t.Context(), tt.token)
			if tt.wantIssuer == "" {
				if !errors.Is(err, resource.ErrInvalidToken) {
					t.Fatalf("got (%+v, %v), want ErrInvalidToken", p, err)
				}
				return
			}
			if err != nil || p.Issuer != tt.wantIssuer {
				t.Fatalf("got (%+v, %v), want a principal from %s", p, err, tt.wantIssuer)
			}
		})
	}
}
