// Package pki gives services an identity for mutual TLS and the means to
// check their peers': X.509 certificates carrying a SPIFFE ID
// (spiffe://<trust-domain>/svc/<name>), the trust bundle that verifies them,
// and tls.Config builders that authorize the peer by its SPIFFE ID.
//
// The shapes follow go-spiffe. A source of certificates implements
// x509svid.Source and a source of trust bundles implements x509bundle.Source,
// so this package's StaticSource and RotatingSource, go-spiffe's own
// x509svid.SVID and x509bundle.Bundle, and SPIRE's workloadapi.X509Source are
// interchangeable wherever a source is taken:
//
//	src, err := pki.NewRotatingSource(ctx, issuer)
//	...
//	srv.TLSConfig = pki.ServerConfig(src, src, pki.AuthorizeID(gateway), pki.WithLogger(logger))
//
// ServerConfig and ClientConfig wrap go-spiffe's spiffetls/tlsconfig: the
// peer's chain is verified against the bundle of its trust domain (X.509 path
// validation, RFC 5280 §6, including name constraints and validity), its one
// URI SAN is its SPIFFE ID (SPIFFE X509-SVID §4), and the Authorizer decides.
// Certificates are taken from the source at every handshake, so a renewed
// certificate or a refreshed bundle applies to the next connection without a
// restart. TLS 1.3 (RFC 8446) is the minimum version.
//
// A RotatingSource gets its certificates from an Issuer by PKCS #10 request
// (RFC 2986) and renews them at two thirds of their lifetime. HTTPIssuer is
// the Issuer for a Gatehouse authorization server's issuance endpoint: it
// may bootstrap with a one-time join token and renew with the certificate
// itself over mutual TLS (Renewer). A FileSource serves certificate files
// and re-reads them when a renewal replaces them.
//
// pki links no server and no database: services import it.
package pki
