package pki_test

import (
	"testing"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/gatehouse-dev/gatehouse/pki"
	"github.com/gatehouse-dev/gatehouse/pki/pkitest"
)

// TestSwapInGoSPIFFE replaces our sources with go-spiffe's own types — what
// SPIRE's Workload API hands a service — on one side at a time, and our
// builders with go-spiffe's tlsconfig on the other: each combination
// interoperates, so a service can move to SPIRE without code changes.
func TestSwapInGoSPIFFE(t *testing.T) {
	ca := pkitest.NewCA(t)
	gatewayID, ordersID := ca.ID("gateway"), ca.ID("orders")
	// go-spiffe's own types, built from our CA's certificates.
	svid := func(name string) *x509svid.SVID { return ca.SVID(name) }
	var bundle x509bundle.Source = x509bundle.NewSet(x509bundle.FromX509Authorities(ca.TrustDomain, ca.Bundle().X509Authorities()))

	t.Run("our ServerConfig with go-spiffe sources, go-spiffe client", func(t *testing.T) {
		url := serve(t, pki.ServerConfig(svid("orders"), bundle, pki.AuthorizeID(gatewayID)), &whoami{})
		c := client(t, tlsconfig.MTLSClientConfig(svid("gateway"), bundle, tlsconfig.AuthorizeID(ordersID)), false)
		if got, err := get(c, url); err != nil || got != gatewayID.String() {
			t.Fatalf("got %q, %v, want %q", got, err, gatewayID)
		}
	})
	t.Run("go-spiffe server, our ClientConfig with go-spiffe sources", func(t *testing.T) {
		url := serve(t, tlsconfig.MTLSServerConfig(svid("orders"), bundle, tlsconfig.AuthorizeID(gatewayID)), &whoami{})
		c := client(t, pki.ClientConfig(svid("gateway"), bundle, pki.AuthorizeID(ordersID)), false)
		if got, err := get(c, url); err != nil || got != gatewayID.String() {
			t.Fatalf("got %q, %v, want %q", got, err, gatewayID)
		}
	})
	t.Run("go-spiffe authorizer in our builder, ours in go-spiffe's", func(t *testing.T) {
		prefix := spiffeid.RequireFromPath(ca.TrustDomain, "/svc")
		url := serve(t, pki.ServerConfig(ca.Source("orders"), ca, pki.Authorizer(tlsconfig.AuthorizeIDPrefix(prefix))), &whoami{})
		c := client(t, tlsconfig.MTLSClientConfig(ca.Source("gateway"), ca, tlsconfig.Authorizer(pki.AuthorizeID(ordersID))), false)
		if got, err := get(c, url); err != nil || got != gatewayID.String() {
			t.Fatalf("got %q, %v, want %q", got, err, gatewayID)
		}
	})
	t.Run("go-spiffe client with an unauthorized ID is still refused", func(t *testing.T) {
		h := &whoami{}
		url := serve(t, pki.ServerConfig(svid("orders"), bundle, pki.AuthorizeID(gatewayID)), h)
		c := client(t, tlsconfig.MTLSClientConfig(svid("consumers"), bundle, tlsconfig.AuthorizeAny()), false)
		if _, err := get(c, url); err == nil || h.hits.Load() != 0 {
			t.Fatalf("got %v and %d requests through, want a refusal", err, h.hits.Load())
		}
	})
}
