package resource

import (
	"context"
	"crypto/x509"
	"fmt"
	"net/http"

	"github.com/gatehouse-dev/gatehouse/internal/jose"
)

// ErrCertificateMismatch reports a certificate-bound access token (RFC 8705
// §3) presented over a connection without the certificate it is bound to:
// stolen, or replayed by a party that does not hold the key. It wraps
// ErrInvalidToken, so it is answered 401 invalid_token.
var ErrCertificateMismatch = fmt.Errorf("%w: bound to a client certificate this connection did not present", ErrInvalidToken)

type peerCertificateKey struct{}

// WithPeerCertificate returns a copy of ctx carrying the client certificate
// of the TLS connection a token arrived on (nil: none). Verifier and
// Introspector accept a certificate-bound token only when ctx carries the
// certificate it is bound to. Middleware and package grpcauth set it from
// the connection; call it when you verify tokens yourself.
func WithPeerCertificate(ctx context.Context, cert *x509.Certificate) context.Context {
	return context.WithValue(ctx, peerCertificateKey{}, cert)
}

// PeerCertificate returns the certificate WithPeerCertificate put in ctx,
// or nil.
func PeerCertificate(ctx context.Context) *x509.Certificate {
	cert, _ := ctx.Value(peerCertificateKey{}).(*x509.Certificate)
	return cert
}

// RequestCertificate returns the client certificate of r's TLS connection:
// the first of its peer certificates, or nil.
func RequestCertificate(r *http.Request) *x509.Certificate {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return nil
	}
	return r.TLS.PeerCertificates[0]
}

// CheckCertificate returns nil if p's token may be used over a connection
// that presented cert (nil: none): an unbound token over any connection, a
// certificate-bound one only with its certificate. Otherwise it returns
// ErrCertificateMismatch.
func (p *Principal) CheckCertificate(cert *x509.Certificate) error {
	if p.CertificateThumbprint == "" {
		return nil
	}
	if cert == nil || !jose.MatchesThumbprint(p.CertificateThumbprint, cert.Raw) {
		return ErrCertificateMismatch
	}
	return nil
}

// presented returns p if the certificate in ctx may present its token.
func presented(ctx context.Context, p *Principal) (*Principal, error) {
	if err := p.CheckCertificate(PeerCertificate(ctx)); err != nil {
		return nil, err
	}
	return p, nil
}
