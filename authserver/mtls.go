package authserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/gatehouse-dev/gatehouse/internal/ca"
	"github.com/gatehouse-dev/gatehouse/internal/jose"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/pki"
)

// MTLS configures OAuth 2.0 Mutual-TLS (RFC 8705): a second listener that
// asks clients for a certificate, serving the token, introspection,
// revocation, userinfo and certificate issuance endpoints. Discovery names
// them as mtls_endpoint_aliases (§5) and announces
// tls_client_certificate_bound_access_tokens (§3.3).
//
// An access token requested there with a client certificate is bound to it:
// it carries cnf {"x5t#S256": base64url(SHA-256(certificate))} (§3.1), and a
// resource server accepts it only from a TLS connection that presented that
// certificate. The TLS handshake proves the client holds the certificate's
// key, which is all a binding needs (§3); whether the certificate is also
// trusted matters only where it authenticates the client. A client registered
// CertificateBound gets no token without a certificate.
//
// A client registered for tls_client_auth (§2.1) authenticates with a
// certificate that verifies against Bundle and whose URI SAN is the client's
// SPIFFE ID, spiffe://<TrustDomain>/svc/<client_id>: the certificate a
// service already has from the issuance endpoint (tls_client_auth_san_uri
// is thus derived from the client ID, not registered).
type MTLS struct {
	// URL is the https base URL of the mutual-TLS listener, such as
	// "https://mtls.auth.example.com:8443". The aliases are the issuer's
	// endpoint paths below it. Required.
	URL string
	// Bundle verifies the certificates that authenticate clients
	// (tls_client_auth) and services renewing at the issuance endpoint. If
	// nil, the trust bundle of Config.CA; with neither, tls_client_auth is
	// not offered (tokens are still bound).
	Bundle x509bundle.Source
	// TrustDomain of the SPIFFE IDs clients authenticate with. If zero,
	// Config.CA's.
	TrustDomain spiffeid.TrustDomain
}

// MTLSListenerConfig returns the TLS configuration of the mutual-TLS
// listener: it presents the certificate getCertificate returns and asks
// every client for a certificate without requiring one, so clients that
// authenticate otherwise can use the aliases too. The certificate is
// checked where it matters (tls_client_auth, the issuance endpoint), against
// the current trust bundle. The minimum version is TLS 1.2.
func MTLSListenerConfig(getCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		ClientAuth:     tls.RequestClientCert,
		GetCertificate: getCertificate,
	}
}

// mtlsPaths are the endpoints served on the mutual-TLS listener, by their
// metadata names (RFC 8705 §5).
var mtlsPaths = []struct{ name, path string }{
	{"token_endpoint", pathToken},
	{"introspection_endpoint", pathIntrospect},
	{"revocation_endpoint", pathRevoke},
	{"userinfo_endpoint", pathUserinfo},
	{"gatehouse_pki_issue_endpoint", pathPKIIssue},
}

// MTLSHandler returns the handler of the mutual-TLS listener: the endpoints
// named in mtls_endpoint_aliases, and 404 for anything else (no browser
// pages on a listener that asks for certificates). Serve it with a
// tls.Listener using MTLSListenerConfig. It is nil when Config.MTLS is
// nil.
func (s *Server) MTLSHandler() http.Handler {
	if s.cfg.MTLS == nil {
		return nil
	}
	allowed := map[string]bool{}
	for _, p := range mtlsPaths {
		if p.path != pathPKIIssue || s.cfg.CA != nil {
			allowed[s.prefix+p.path] = true
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !allowed[r.URL.Path] {
			w.Header().Set("X-Content-Type-Options", "nosniff")
			oauth.WriteError(w, &oauth.Error{Code: oauth.ErrInvalidRequest, Status: http.StatusNotFound,
				Description: "not an endpoint of the mutual-TLS listener"})
			return
		}
		s.ServeHTTP(w, r)
	})
}

// checkMTLS validates Config.MTLS.
func (c *Config) checkMTLS() error {
	if c.MTLS == nil {
		return nil
	}
	m := *c.MTLS // the caller's struct stays as it was
	c.MTLS = &m
	u, err := url.Parse(m.URL)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("authserver: MTLS.URL %q must be an https URL without query or fragment", m.URL)
	}
	m.URL = strings.TrimSuffix(m.URL, "/")
	if m.TrustDomain.IsZero() && c.CA != nil {
		m.TrustDomain = c.CA.TrustDomain()
	}
	if m.Bundle == nil && c.CA != nil {
		m.Bundle = caBundle{c.CA}
	}
	return nil
}

// caBundle is the current trust bundle of the CA as an x509bundle.Source.
type caBundle struct {
	ca interface {
		Bundle() (*x509bundle.Bundle, error)
	}
}

func (b caBundle) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	bundle, err := b.ca.Bundle()
	if err != nil {
		return nil, err
	}
	return bundle.GetX509BundleForTrustDomain(td)
}

// tlsClientAuth reports whether tls_client_auth is offered.
func (s *Server) tlsClientAuth() bool {
	m := s.cfg.MTLS
	return m != nil && m.Bundle != nil && !m.TrustDomain.IsZero()
}

// addMTLSMetadata adds RFC 8705 §3.3 and §5 to the discovery document.
func (s *Server) addMTLSMetadata(m *metadata) {
	if s.cfg.MTLS == nil {
		return
	}
	m.CertificateBoundAccessTokens = true
	m.MTLSEndpointAliases = map[string]string{}
	for _, p := range mtlsPaths {
		if p.path != pathPKIIssue || s.cfg.CA != nil {
			m.MTLSEndpointAliases[p.name] = s.cfg.MTLS.URL + s.prefix + p.path
		}
	}
	if s.tlsClientAuth() {
		// One list backs all three: introspection and revocation
		// authenticate clients as the token endpoint does.
		methods := append(slices.Clip(m.TokenEndpointAuthMethods), store.AuthTLSClientAuth)
		m.TokenEndpointAuthMethods, m.IntrospectionAuthMethods, m.RevocationAuthMethods = methods, methods, methods
	}
}

// peerCertificate returns the certificate the client presented on the
// request's TLS connection, or nil.
func peerCertificate(r *http.Request) *x509.Certificate {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return nil
	}
	return r.TLS.PeerCertificates[0]
}

// certificateBinding returns the confirmation that binds the tokens of a
// token request to the client's certificate: nil when the request brought
// none, which a client registered CertificateBound may not do.
func (s *Server) certificateBinding(r *http.Request, c store.Client) (*jose.Confirmation, error) {
	cert := peerCertificate(r)
	if cert != nil {
		return jose.BindCertificate(cert.Raw), nil
	}
	if !c.CertificateBound {
		return nil, nil
	}
	desc := "this client's access tokens are bound to its certificate (RFC 8705): request them over mutual TLS"
	if s.cfg.MTLS != nil {
		desc += " at " + s.cfg.MTLS.URL + s.prefix + pathToken + " (mtls_endpoint_aliases), presenting the certificate"
	} else {
		desc += ", which this server does not offer"
	}
	return nil, oauth.Errorf(oauth.ErrInvalidRequest, "%s", desc)
}

// presentedBy reports whether a token with confirmation cnf may be used on
// request r: an unbound token anywhere, a bound one only over a TLS
// connection whose client certificate has the token's thumbprint
// (RFC 8705 §3).
func presentedBy(r *http.Request, cnf *jose.Confirmation) bool {
	if cnf == nil {
		return true
	}
	cert := peerCertificate(r)
	return cert != nil && jose.MatchesThumbprint(cnf.X5tS256, cert.Raw)
}

// errBindingMismatch is the answer to a bound access token presented
// without its certificate.
const errBindingMismatch = "the access token is bound to a client certificate (RFC 8705) that this connection did not present"

// certificateID verifies the client certificate of r against the mutual-TLS
// bundle and returns its SPIFFE ID.
func (s *Server) certificateID(r *http.Request) (spiffeid.ID, error) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return spiffeid.ID{}, errors.New("no client certificate")
	}
	bundle := s.cfg.MTLS.Bundle
	if bundle == nil {
		return spiffeid.ID{}, errors.New("no trust bundle to verify client certificates")
	}
	id, _, err := x509svid.Verify(r.TLS.PeerCertificates, bundle, x509svid.WithTime(s.cfg.Now()))
	if err != nil {
		return spiffeid.ID{}, err
	}
	return id, nil
}

// certificateAuthenticates reports whether the request's client
// certificate authenticates client c (tls_client_auth): it verifies against
// the bundle and its SPIFFE ID is spiffe://<trust domain>/svc/<client ID>.
// The reason for a refusal is returned for the audit log.
func (s *Server) certificateAuthenticates(r *http.Request, c store.Client) (bool, string) {
	if !s.tlsClientAuth() {
		return false, "tls_client_auth is not offered (no mtls block or no trust bundle)"
	}
	want, err := pki.ServiceID(s.cfg.MTLS.TrustDomain, c.ID)
	if err != nil {
		return false, "the client ID is not a SPIFFE service name"
	}
	got, err := s.certificateID(r)
	if err != nil {
		return false, "client certificate: " + err.Error()
	}
	if got != want {
		return false, "the certificate names " + got.String() + ", not " + want.String()
	}
	if !issuedWhileEnabled(c, ca.IssuedAt(r.TLS.PeerCertificates[0])) {
		return false, "the certificate was issued before the client was last disabled"
	}
	return true, ""
}

// confirmationKey carries the confirmation of a token request from the
// pipeline to mintAccessToken, so that every grant's access token is bound
// alike.
type confirmationKey struct{}

func withConfirmation(ctx context.Context, cnf *jose.Confirmation) context.Context {
	if cnf == nil {
		return ctx
	}
	return context.WithValue(ctx, confirmationKey{}, cnf)
}

func confirmationFrom(ctx context.Context) *jose.Confirmation {
	cnf, _ := ctx.Value(confirmationKey{}).(*jose.Confirmation)
	return cnf
}
