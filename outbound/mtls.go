package outbound

import (
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/gatehouse-dev/gatehouse/internal/jose"
	"github.com/gatehouse-dev/gatehouse/pki"
)

// MTLSTransport is an http.RoundTripper for calls to other services over
// mutual TLS, presenting the service's certificate from Certificate and
// admitting the server as Authorize decides (pki.ClientConfig). Each
// certificate gets connections of its own: after a renewal, requests go
// over new connections that present the new certificate, and those opened
// with the old one are closed once idle.
//
// Certificate-bound tokens need this: a token bound to the renewed
// certificate (ClientCredentials with Certificate) is refused on a
// connection that still presents the old one, and an http.Transport
// reuses its connections for as long as they are busy. Use it as the Base
// of a Transport whose Source is such a ClientCredentials, with the same
// certificate source. It is safe for concurrent use; set the fields before
// first use.
type MTLSTransport struct {
	// Certificate is the service's certificate source, such as a
	// pki.RotatingSource. Required.
	Certificate x509svid.Source
	// Bundle verifies the server's certificate. Required.
	Bundle x509bundle.Source
	// Authorize admits the server by its SPIFFE ID. Required.
	Authorize pki.Authorizer
	// Base is cloned for each certificate, with its TLSClientConfig
	// replaced; if nil, http.DefaultTransport. Its IdleConnTimeout (90s if
	// zero) bounds how long the connections of a replaced certificate
	// outlive their last request.
	Base *http.Transport

	mu         sync.Mutex
	thumbprint string
	current    *http.Transport
}

// RoundTrip implements http.RoundTripper.
func (t *MTLSTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rt, err := t.transport()
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	return rt.RoundTrip(req)
}

// transport returns the transport of the current certificate, replacing
// that of the previous one.
func (t *MTLSTransport) transport() (*http.Transport, error) {
	if t.Certificate == nil || t.Bundle == nil || t.Authorize == nil {
		return nil, errors.New("outbound: MTLSTransport needs Certificate, Bundle and Authorize")
	}
	svid, err := t.Certificate.GetX509SVID()
	if err != nil {
		return nil, err
	}
	if svid == nil || len(svid.Certificates) == 0 {
		return nil, errors.New("outbound: the certificate source has no certificate")
	}
	thumbprint := jose.CertificateThumbprint(svid.Certificates[0].Raw)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.current != nil && t.thumbprint == thumbprint {
		return t.current, nil
	}
	base := t.Base
	if base == nil {
		base = http.DefaultTransport.(*http.Transport)
	}
	next := base.Clone()
	// This transport presents this certificate only: an *x509svid.SVID is
	// a source of itself.
	next.TLSClientConfig = pki.ClientConfig(svid, t.Bundle, t.Authorize)
	if next.IdleConnTimeout == 0 {
		next.IdleConnTimeout = 90 * time.Second
	}
	if t.current != nil {
		t.current.CloseIdleConnections() // the busy ones close once idle: nothing reuses them
	}
	t.current, t.thumbprint = next, thumbprint
	return next, nil
}

// CloseIdleConnections closes the idle connections of the current
// certificate's transport.
func (t *MTLSTransport) CloseIdleConnections() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.current != nil {
		t.current.CloseIdleConnections()
	}
}

// Interface guard.
var _ http.RoundTripper = (*MTLSTransport)(nil)
