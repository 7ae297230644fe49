package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// ServerConfig returns the TLS configuration of a server that presents the
// certificate from svid, requires a client certificate, verifies it against
// the bundle of the client's trust domain from bundle, and admits the client
// only if authorize does. Certificates and bundles are read from the sources
// at each handshake. The minimum version is TLS 1.3.
//
// Use it as http.Server.TLSConfig with ServeTLS(ln, "", ""), or with
// tls.NewListener. Do not add Certificates to it: Go serves those, not
// GetCertificate's, to clients that send no server name (httptest's
// StartTLS adds its own; wrap the test server's Listener instead). It
// panics if an argument is nil.
func ServerConfig(svid x509svid.Source, bundle x509bundle.Source, authorize Authorizer, opts ...Option) *tls.Config {
	mustHave(svid, bundle, authorize)
	c := tlsconfig.MTLSServerConfig(svid, bundle, authorize.explained())
	c.MinVersion = tls.VersionTLS13
	newOptions(opts).logRefusals(c, "client")
	return c
}

// ClientConfig returns the TLS configuration of a client that presents the
// certificate from svid, verifies the server's certificate against the
// bundle of the server's trust domain from bundle, and goes on only if
// authorize admits the server. The server is authenticated by its SPIFFE ID,
// not by host name. Certificates and bundles are read from the sources at
// each handshake. The minimum version is TLS 1.3.
//
// Use it as http.Transport.TLSClientConfig. It panics if an argument is nil.
func ClientConfig(svid x509svid.Source, bundle x509bundle.Source, authorize Authorizer, opts ...Option) *tls.Config {
	mustHave(svid, bundle, authorize)
	c := tlsconfig.MTLSClientConfig(svid, bundle, authorize.explained())
	c.MinVersion = tls.VersionTLS13
	newOptions(opts).logRefusals(c, "server")
	return c
}

func mustHave(svid x509svid.Source, bundle x509bundle.Source, authorize Authorizer) {
	if svid == nil || bundle == nil || authorize == nil {
		panic("pki: tls.Config needs a certificate source, a bundle source and an Authorizer")
	}
}

// Option changes a rarely changed setting of ServerConfig, ClientConfig,
// NewRotatingSource or NewFileSource. Options that do not apply to a function are ignored.
type Option func(*options)

type options struct {
	logger        *slog.Logger
	bundleRefresh bundleRefresh
	reloadEvery   time.Duration
}

func newOptions(opts []Option) *options {
	o := &options{}
	for _, opt := range opts {
		opt(o)
	}
	return o
}

// WithLogger makes ServerConfig and ClientConfig log one line at level Warn
// for each peer they refuse — with the peer's SPIFFE ID and what was
// expected, or why its certificate did not verify — NewRotatingSource
// log renewals and their failures, and NewFileSource log reloads and the
// sets of files it refused. Without it nothing is logged.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.logger = l }
}

// logRefusals wraps the peer verification of c so that each refusal is
// logged once. peer names the other side: "client" or "server".
func (o *options) logRefusals(c *tls.Config, peer string) {
	if o.logger == nil {
		return
	}
	verify := c.VerifyPeerCertificate
	logger := o.logger
	c.VerifyPeerCertificate = func(raw [][]byte, chains [][]*x509.Certificate) error {
		err := verify(raw, chains)
		if err == nil {
			return nil
		}
		if ue, ok := errors.AsType[*UnauthorizedError](err); ok {
			logger.Warn("mtls: "+peer+" refused: SPIFFE ID not authorized",
				"peer", peer, "peer_id", ue.ID.String(), "want", ue.Want)
			return err
		}
		logger.Warn("mtls: "+peer+" refused: certificate not verified",
			"peer", peer, "peer_id", peerID(raw), "err", err.Error())
		return err
	}
}

// peerID returns the SPIFFE ID a refused chain claims, for the log only;
// "" if it names none.
func peerID(raw [][]byte) string {
	if len(raw) == 0 {
		return ""
	}
	leaf, err := x509.ParseCertificate(raw[0])
	if err != nil {
		return ""
	}
	id, err := x509svid.IDFromCert(leaf)
	if err != nil {
		return ""
	}
	return id.String()
}
