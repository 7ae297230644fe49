package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/gatehouse-dev/gatehouse/pki"
)

// AuthServerMTLS is the mtls block of the authorization server file: a
// second listener for OAuth 2.0 Mutual-TLS (RFC 8705) — certificate-bound
// access tokens and tls_client_auth — announced in discovery as
// mtls_endpoint_aliases (docs/mtls.md).
type AuthServerMTLS struct {
	// Listen address of the mutual-TLS listener. Required.
	Listen string `yaml:"listen"`
	// URL is the https base URL clients reach the listener at; default
	// https://<listen>.
	URL string `yaml:"url"`
	// CertFile and KeyFile hold the listener's certificate chain and key
	// (PEM), re-read when they change: a certificate clients verify by
	// host name. If both are empty, the listener presents a certificate of
	// the built-in CA (ca_dir) for spiffe://<trust-domain>/svc/<server_name>,
	// issued and renewed in process; clients then verify it by that SPIFFE
	// ID against the trust bundle.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName is the service name of that certificate; default
	// "authserver".
	ServerName string `yaml:"server_name"`
}

// DefaultMTLSServerName is the service name of the authorization server's
// own certificate on its mutual-TLS listener.
const DefaultMTLSServerName = "authserver"

// check validates the block and applies its defaults; caDir is the file's
// ca_dir.
func (m *AuthServerMTLS) check(caDir string) error {
	var errs []error
	if m.Listen == "" {
		errs = append(errs, errors.New("mtls: listen is required"))
	} else if _, _, err := net.SplitHostPort(m.Listen); err != nil {
		errs = append(errs, fmt.Errorf("mtls: listen %q: %w", m.Listen, err))
	}
	if m.URL == "" {
		m.URL = "https://" + m.Listen
	}
	if u, err := url.Parse(m.URL); err != nil || u.Scheme != "https" || u.Host == "" {
		errs = append(errs, fmt.Errorf("mtls: url %q: want an https URL", m.URL))
	}
	if m.ServerName == "" {
		m.ServerName = DefaultMTLSServerName
	}
	switch {
	case (m.CertFile == "") != (m.KeyFile == ""):
		errs = append(errs, errors.New("mtls: cert_file and key_file go together"))
	case m.CertFile == "" && caDir == "":
		errs = append(errs, errors.New("mtls: without cert_file and key_file, the listener's certificate comes from the built-in CA: set ca_dir"))
	}
	if _, err := pki.ServiceID(spiffeid.RequireTrustDomainFromString("example.org"), m.ServerName); err != nil {
		errs = append(errs, fmt.Errorf("mtls: server_name %q is not a service name", m.ServerName))
	}
	return errors.Join(errs...)
}
