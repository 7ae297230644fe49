package main

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"

	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"

	"github.com/gatehouse-dev/gatehouse/authserver"
	"github.com/gatehouse-dev/gatehouse/internal/ca"
	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/serve"
	"github.com/gatehouse-dev/gatehouse/pki"
)

// mtlsConfig is the authserver.MTLS of the file's mtls block; nil without
// one.
func mtlsConfig(c *config.AuthServer) *authserver.MTLS {
	if c.MTLS == nil {
		return nil
	}
	return &authserver.MTLS{URL: c.MTLS.URL}
}

// serveMTLS runs the mutual-TLS listener until ctx is done: the RFC 8705
// endpoint aliases, with the certificate of the block's files, or else one
// issued by the CA in process and renewed before it expires.
func serveMTLS(ctx context.Context, c *config.AuthServer, issuer *ca.CA, as *authserver.Server, logger *slog.Logger) error {
	m := c.MTLS
	var getCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	if m.CertFile != "" {
		kp, err := serve.LoadKeyPair(m.CertFile, m.KeyFile, 0)
		if err != nil {
			return err
		}
		getCertificate = kp.GetCertificate
	} else {
		src, err := pki.NewRotatingSource(ctx, issuer.Issuer(m.ServerName), pki.WithLogger(logger))
		if err != nil {
			return err
		}
		defer src.Close()
		svid, _ := src.GetX509SVID()
		logger.Info("mutual-TLS listener certificate from the built-in CA", "spiffe_id", svid.ID.String())
		getCertificate = tlsconfig.GetCertificate(src)
	}
	ln, err := net.Listen("tcp", m.Listen)
	if err != nil {
		return err
	}
	logger.Info("authorization server mutual-TLS listener ready", "addr", ln.Addr().String(), "url", m.URL)
	tlsLn := tls.NewListener(ln, authserver.MTLSListenerConfig(getCertificate))
	return serve.Run(ctx, serve.NewServer(as.MTLSHandler(), logger), tlsLn)
}
