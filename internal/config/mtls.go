package config

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/gatehouse-dev/gatehouse/gateway"
	"github.com/gatehouse-dev/gatehouse/outbound"
	"github.com/gatehouse-dev/gatehouse/pki"
)

// This file holds what every part that speaks mutual TLS shares — the
// gateway's file, the service files and the dev stack: where a part's
// certificate comes from, which peers a listener admits, and the transport
// to an upstream that must present one SPIFFE ID.

// Source is a part's certificate and trust bundle: a *pki.StaticSource
// (files) or a *pki.RotatingSource (renewed in process).
type Source interface {
	x509svid.Source
	x509bundle.Source
}

// ServiceMTLS is the mtls block of a service file (`gatehouse demo orders`
// and `consumers`): the service's certificate, and the SPIFFE IDs of the
// peers it admits. The certificate comes either from files, as `gatehouse
// ca issue` writes them (cert_file, key_file, bundle_file; read once at
// start), or from the authorization server's issuance endpoint with the
// service's own client (client_id, client_secret_file; renewed in process
// at two thirds of its lifetime). See docs/mtls.md.
type ServiceMTLS struct {
	MTLS `yaml:",inline"`
	// ClientID is the service's client at the authorization server:
	// client_credentials, audience the issuer. Its ID is the service's
	// name: the certificate says spiffe://<trust-domain>/svc/<client_id>.
	ClientID string `yaml:"client_id"`
	// ClientSecretFile holds ClientID's secret. Required with ClientID.
	ClientSecretFile string `yaml:"client_secret_file"`
	// AllowedPeers are the SPIFFE IDs of the callers the service admits;
	// every other client certificate is refused in the handshake. Required.
	AllowedPeers []string `yaml:"allowed_peers"`

	peers []spiffeid.ID // AllowedPeers, parsed by check
}

// check validates the block and parses AllowedPeers.
func (m *ServiceMTLS) check() error {
	files := m.CertFile != "" || m.KeyFile != "" || m.BundleFile != ""
	var errs []error
	switch {
	case files && m.ClientID != "":
		errs = append(errs, errors.New("mtls: set cert_file, key_file and bundle_file, or client_id, not both"))
	case files && (m.CertFile == "" || m.KeyFile == "" || m.BundleFile == ""):
		errs = append(errs, errors.New("mtls: cert_file, key_file and bundle_file go together"))
	case !files && m.ClientID == "":
		errs = append(errs, errors.New("mtls: set cert_file, key_file and bundle_file, or client_id and client_secret_file"))
	case m.ClientID != "" && m.ClientSecretFile == "":
		errs = append(errs, errors.New("mtls: client_id needs client_secret_file"))
	}
	if len(m.AllowedPeers) == 0 {
		errs = append(errs, errors.New("mtls: allowed_peers is required (the SPIFFE IDs of the callers to admit)"))
	}
	m.peers = m.peers[:0]
	for _, p := range m.AllowedPeers {
		id, err := spiffeid.FromString(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("mtls: allowed_peers: %q: %w", p, err))
			continue
		}
		m.peers = append(m.peers, id)
	}
	return errors.Join(errs...)
}

// Source returns the service's certificate source: the files, or a
// rotating source that gets its certificates from issuer's issuance
// endpoint (found by discovery) until ctx is done. The second result
// stops the source; call it when the service stops.
func (m *ServiceMTLS) Source(ctx context.Context, issuer string, logger *slog.Logger) (Source, func(), error) {
	if m.ClientID == "" {
		src, err := m.MTLS.source(pki.WithLogger(logger))
		return src, func() {}, err
	}
	secret, err := readSecret(m.ClientSecretFile, "")
	if err != nil {
		return nil, nil, fmt.Errorf("mtls: client secret: %w", err)
	}
	hc := &http.Client{Timeout: 30 * time.Second}
	meta, err := discover(ctx, hc, issuer)
	if err != nil {
		return nil, nil, fmt.Errorf("mtls: %w", err)
	}
	if meta.PKIIssueEndpoint == "" {
		return nil, nil, fmt.Errorf("mtls: %s issues no certificates (no gatehouse_pki_issue_endpoint in discovery; set ca_dir in its file)", issuer)
	}
	token := &outbound.ClientCredentials{TokenURL: meta.TokenEndpoint, ClientID: m.ClientID, ClientSecret: secret, HTTPClient: hc}
	iss := &pki.HTTPIssuer{IssueURL: meta.PKIIssueEndpoint, BundleURL: meta.PKIBundleEndpoint, Token: token.Token, HTTPClient: hc}
	src, err := pki.NewRotatingSource(ctx, iss, pki.WithLogger(logger))
	if err != nil {
		return nil, nil, fmt.Errorf("mtls: certificate for client %q from %s: %w", m.ClientID, meta.PKIIssueEndpoint, err)
	}
	return src, func() { src.Close() }, nil
}

// ServerConfig is the TLS configuration of the service's listener: its
// certificate from src, a client certificate required, and only
// AllowedPeers admitted (each refusal logged).
func (m *ServiceMTLS) ServerConfig(src Source, logger *slog.Logger) *tls.Config {
	return pki.ServerConfig(src, src, AuthorizePeers(m.peers...), pki.WithLogger(logger))
}

// source reads the block's files and re-reads them when they change
// (pki.FileSource), so renewals need no restart.
func (m *MTLS) source(opts ...pki.Option) (*pki.FileSource, error) {
	src, err := pki.NewFileSource(m.CertFile, m.KeyFile, m.BundleFile, opts...)
	if err != nil {
		return nil, fmt.Errorf("mtls: %w", err)
	}
	return src, nil
}

// AuthorizePeers admits exactly the SPIFFE IDs given: pki.AuthorizeID for
// one (its refusals name it), pki.AuthorizeOneOf for several.
func AuthorizePeers(ids ...spiffeid.ID) pki.Authorizer {
	if len(ids) == 1 {
		return pki.AuthorizeID(ids[0])
	}
	return pki.AuthorizeOneOf(ids...)
}

// UpstreamTransport is the transport of a part calling the service whose
// SPIFFE ID is upstream: gateway.NewTransport over mutual TLS with the
// part's certificate from src, refusing a server that is not exactly
// upstream.
func UpstreamTransport(src Source, upstream spiffeid.ID, opts ...pki.Option) *http.Transport {
	t := gateway.NewTransport()
	t.TLSClientConfig = pki.ClientConfig(src, src, pki.AuthorizeID(upstream), opts...)
	return t
}
