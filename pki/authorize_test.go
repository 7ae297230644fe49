package pki_test

import (
	"errors"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/gatehouse-dev/gatehouse/pki"
)

func TestAuthorizers(t *testing.T) {
	td := spiffeid.RequireTrustDomainFromString("example.org")
	other := spiffeid.RequireTrustDomainFromString("other.org")
	gateway, orders := pki.MustServiceID(td, "gateway"), pki.MustServiceID(td, "orders")
	tests := []struct {
		name      string
		authorize pki.Authorizer
		peer      spiffeid.ID
		want      string // "" admits; else UnauthorizedError.Want
	}{
		{"ID admits it", pki.AuthorizeID(gateway), gateway, ""},
		{"ID refuses another", pki.AuthorizeID(gateway), orders, "spiffe://example.org/svc/gateway"},
		{"ID refuses same path elsewhere", pki.AuthorizeID(gateway), pki.MustServiceID(other, "gateway"), "spiffe://example.org/svc/gateway"},
		{"OneOf admits each", pki.AuthorizeOneOf(gateway, orders), orders, ""},
		{"OneOf refuses others", pki.AuthorizeOneOf(gateway, orders), pki.MustServiceID(td, "consumers"),
			"one of [spiffe://example.org/svc/gateway spiffe://example.org/svc/orders]"},
		{"OneOf of none refuses all", pki.AuthorizeOneOf(), gateway, "one of []"},
		{"MemberOf admits the domain", pki.AuthorizeMemberOf(td), orders, ""},
		{"MemberOf refuses another domain", pki.AuthorizeMemberOf(td), pki.MustServiceID(other, "orders"), "a member of example.org"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.authorize(tt.peer, nil)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("got %v, want admitted", err)
				}
				return
			}
			ue, ok := errors.AsType[*pki.UnauthorizedError](err)
			if !ok || !errors.Is(err, pki.ErrUnauthorized) {
				t.Fatalf("got %v, want an *UnauthorizedError wrapping ErrUnauthorized", err)
			}
			if ue.ID != tt.peer || ue.Want != tt.want {
				t.Fatalf("got peer %q want %q, want peer %q want %q", ue.ID, ue.Want, tt.peer, tt.want)
			}
		})
	}
}

func TestServiceID(t *testing.T) {
	td := spiffeid.RequireTrustDomainFromString("example.org")
	for _, tt := range []struct {
		name, want string
		ok         bool
	}{
		{"orders", "spiffe://example.org/svc/orders", true},
		{"billing-v2.eu_1", "spiffe://example.org/svc/billing-v2.eu_1", true},
		{"", "", false},
		{"a/b", "", false},
		{"..", "", false},
		{"Orders%", "", false},
	} {
		id, err := pki.ServiceID(td, tt.name)
		if (err == nil) != tt.ok || tt.ok && id.String() != tt.want {
			t.Errorf("ServiceID(%q): got %q, %v, want %q (ok %v)", tt.name, id, err, tt.want, tt.ok)
		}
	}
	if _, err := pki.ServiceID(spiffeid.TrustDomain{}, "orders"); err == nil {
		t.Errorf("got no error for an empty trust domain")
	}
}
