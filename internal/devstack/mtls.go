package devstack

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"

	"github.com/gatehouse-dev/gatehouse/authserver"
	"github.com/gatehouse-dev/gatehouse/internal/ca"
	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/keyring"
	"github.com/gatehouse-dev/gatehouse/pki"
)

// TrustDomain is the SPIFFE trust domain of a dev stack's CA when the data
// folder holds none yet.
const TrustDomain = "gatehouse.internal"

// caDir is the CA's folder inside the data folder.
const caDir = "ca"

// peers says which services may call each demo service over mTLS: orders
// admits only the gateway; consumers admits the gateway and orders.
var peers = map[string][]string{
	"orders":    {GatewayClientID},
	"consumers": {GatewayClientID, "orders"},
}

// mesh holds the service identities of a dev stack: the CA in the data
// folder and one rotating certificate source per part.
type mesh struct {
	ca      *ca.CA
	sources map[string]*pki.RotatingSource
	logger  *slog.Logger
}

// startMesh opens (or creates) the CA in dataDir and gets certificates for
// the gateway and the demo services from it, renewed in process.
func startMesh(ctx context.Context, dataDir string, kr *keyring.Keyring, logger *slog.Logger) (*mesh, error) {
	cfg := ca.Config{Dir: filepath.Join(dataDir, caDir), Keyring: kr}
	c, err := ca.Open(cfg)
	if errors.Is(err, ca.ErrNotInitialized) {
		cfg.TrustDomain = spiffeid.RequireTrustDomainFromString(TrustDomain)
		c, err = ca.Init(cfg)
	}
	if err != nil {
		return nil, err
	}
	m := &mesh{ca: c, sources: map[string]*pki.RotatingSource{}, logger: logger}
	for _, name := range []string{GatewayClientID, "orders", "consumers"} {
		src, err := pki.NewRotatingSource(ctx, c.Issuer(name), pki.WithLogger(logger.With("component", name)))
		if err != nil {
			m.Close()
			return nil, err
		}
		m.sources[name] = src
	}
	return m, nil
}

// id is the SPIFFE ID of the part name.
func (m *mesh) id(name string) spiffeid.ID {
	return pki.MustServiceID(m.ca.TrustDomain(), name)
}

// listener wraps ln in mTLS for the service name, admitting its peers.
func (m *mesh) listener(ln net.Listener, name string) net.Listener {
	var allowed []spiffeid.ID
	for _, p := range peers[name] {
		allowed = append(allowed, m.id(p))
	}
	src := m.sources[name]
	cfg := pki.ServerConfig(src, src, config.AuthorizePeers(allowed...), pki.WithLogger(m.logger.With("component", name)))
	return tls.NewListener(ln, cfg)
}

// transport is the gateway's transport to the upstream service name: mTLS
// with the gateway's certificate, expecting exactly that service's ID.
func (m *mesh) transport(upstream string) http.RoundTripper {
	return m.transportAs(GatewayClientID, upstream)
}

// transportAs is the transport of the part caller to the service upstream:
// mTLS with caller's certificate, expecting exactly upstream's ID.
func (m *mesh) transportAs(caller, upstream string) *http.Transport {
	return config.UpstreamTransport(m.sources[caller], m.id(upstream), pki.WithLogger(m.logger.With("component", caller)))
}

// listenMTLS opens the authorization server's mutual-TLS listener when
// o.MTLSAddr asks for one: TLS with a certificate of the stack's CA for
// "authserver", renewed in process. It returns nils when there is none.
func (s *Stack) listenMTLS(ctx context.Context, o Options) (net.Listener, *authserver.MTLS, error) {
	if o.MTLSAddr == "" {
		return nil, nil, nil
	}
	src, err := pki.NewRotatingSource(ctx, s.CA.Issuer(AuthServerName),
		pki.WithLogger(o.Logger.With("component", AuthServerName)))
	if err != nil {
		return nil, nil, err
	}
	s.mesh.sources[AuthServerName] = src // closed with the mesh
	ln, err := net.Listen("tcp", o.MTLSAddr)
	if err != nil {
		return nil, nil, fmt.Errorf("listen on %s: %w", o.MTLSAddr, err)
	}
	s.MTLSURL = "https://" + ln.Addr().String()
	cfg := authserver.MTLSListenerConfig(tlsconfig.GetCertificate(src))
	return tls.NewListener(ln, cfg), &authserver.MTLS{URL: s.MTLSURL}, nil
}

// AuthServerName is the service name of the authorization server's
// certificate on its mutual-TLS listener.
const AuthServerName = "authserver"

// Close stops the renewals.
func (m *mesh) Close() error {
	for _, s := range m.sources {
		s.Close()
	}
	return nil
}
