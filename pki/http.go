package pki

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// Media types of the issuance protocol.
const (
	// ContentTypeCSR is a DER-encoded PKCS #10 request (RFC 5967).
	ContentTypeCSR = "application/pkcs10"
)

// maxResponse bounds what HTTPIssuer reads from the server.
const maxResponse = 1 << 20

// HTTPIssuer gets certificates from a Gatehouse authorization server: it
// posts a certificate request to the issuance endpoint, and the server
// returns a certificate whose SPIFFE ID is
// spiffe://<trust-domain>/svc/<client_id>. The service authenticates with
//   - JoinToken, a one-time token from `gatehouse ca join-token`, for its
//     first certificate, if set;
//   - its certificate, over mutual TLS at RenewURL, for every renewal, if
//     RenewURL is set;
//   - otherwise Token: its own access token (a client_credentials token
//     whose audience is the server).
//
// So a service with a join token and RenewURL needs no other credential:
// the join token gets it a certificate, and each certificate gets the next.
// It implements Issuer, Renewer and, when BundleURL is set, BundleFetcher.
// The protocol is in docs/mtls.md.
type HTTPIssuer struct {
	// IssueURL is the issuance endpoint, "gatehouse_pki_issue_endpoint" in
	// the server's discovery document. Required.
	IssueURL string
	// BundleURL is the trust bundle endpoint (a SPIFFE bundle document),
	// "gatehouse_pki_bundle_endpoint" in discovery. If empty, FetchBundle
	// fails and the bundle is refreshed only with each certificate.
	BundleURL string
	// Token returns the access token to authenticate with. Required unless
	// JoinToken and RenewURL are both set.
	Token func(ctx context.Context) (string, error)
	// JoinToken, if set, authenticates the first issuance instead of Token.
	// It can be used once; after a certificate was issued it is not sent
	// again.
	JoinToken string
	// RenewURL is the issuance endpoint's mutual-TLS alias,
	// "gatehouse_pki_issue_endpoint" of "mtls_endpoint_aliases" in
	// discovery. If set, renewals authenticate there with the certificate
	// being renewed, not with Token.
	RenewURL string
	// RenewServer admits the server on RenewURL by its SPIFFE ID, verified
	// against the bundle of the certificate being renewed, when the
	// server's mutual-TLS listener has a certificate of the built-in CA.
	// If nil, the server's certificate is verified as HTTPClient verifies
	// it (by host name; a web certificate).
	RenewServer Authorizer
	// HTTPClient; if nil, a client with a 30s timeout. Use one that trusts
	// the authorization server's web certificate.
	HTTPClient *http.Client

	joined atomic.Bool // JoinToken got a certificate
}

// issueResponse is the issuance endpoint's answer.
type issueResponse struct {
	SPIFFEID         string    `json:"spiffe_id"`
	CertificateChain string    `json:"certificate_chain"`
	TrustBundle      string    `json:"trust_bundle"`
	ExpiresAt        time.Time `json:"expires_at"`
}

// Issue implements Issuer: with JoinToken until it got a certificate,
// then with Token.
func (h *HTTPIssuer) Issue(ctx context.Context, csr []byte) ([]*x509.Certificate, *x509bundle.Bundle, error) {
	if h.IssueURL == "" {
		return nil, nil, errors.New("pki: HTTPIssuer needs IssueURL")
	}
	join := h.JoinToken != "" && !h.joined.Load()
	var token string
	switch {
	case join:
		token = h.JoinToken
	case h.Token == nil:
		return nil, nil, errors.New("pki: HTTPIssuer needs Token (or an unused JoinToken)")
	default:
		var err error
		if token, err = h.Token(ctx); err != nil {
			return nil, nil, fmt.Errorf("pki: access token: %w", err)
		}
	}
	chain, bundle, err := h.post(ctx, h.client(), h.IssueURL, token, csr)
	if err == nil && join {
		h.joined.Store(true)
	}
	return chain, bundle, err
}

// Renew implements Renewer: over mutual TLS at RenewURL presenting
// current, or, without RenewURL, as Issue. A current certificate that has
// expired (the server was out of reach for its whole remaining lifetime)
// authenticates nothing, so then Renew asks as Issue does, with Token,
// if it has one.
func (h *HTTPIssuer) Renew(ctx context.Context, csr []byte, current *x509svid.SVID, bundle *x509bundle.Bundle) ([]*x509.Certificate, *x509bundle.Bundle, error) {
	expired := len(current.Certificates) > 0 && !time.Now().Before(current.Certificates[0].NotAfter)
	if h.RenewURL == "" || expired && h.Token != nil {
		return h.Issue(ctx, csr)
	}
	hc, err := h.renewClient(current, bundle)
	if err != nil {
		return nil, nil, err
	}
	defer hc.CloseIdleConnections() // a renewal is rare, and the next one presents another certificate
	return h.post(ctx, hc, h.RenewURL, "", csr)
}

// renewClient is HTTPClient presenting current, on connections of its own.
func (h *HTTPIssuer) renewClient(current *x509svid.SVID, bundle *x509bundle.Bundle) (*http.Client, error) {
	hc := *h.client()
	var t *http.Transport
	switch base := hc.Transport.(type) {
	case nil:
		t = http.DefaultTransport.(*http.Transport).Clone()
	case *http.Transport:
		t = base.Clone()
	default:
		return nil, fmt.Errorf("pki: HTTPIssuer renews with an *http.Transport only, not %T", base)
	}
	switch {
	case h.RenewServer != nil && bundle == nil:
		return nil, errors.New("pki: no trust bundle to verify the server with")
	case h.RenewServer != nil:
		t.TLSClientConfig = ClientConfig(current, bundle, h.RenewServer)
	default:
		if t.TLSClientConfig == nil {
			t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		t.TLSClientConfig.Certificates = nil
		t.TLSClientConfig.GetClientCertificate = tlsconfig.GetClientCertificate(current)
	}
	hc.Transport = t
	return &hc, nil
}

// post sends csr to url, with token as a bearer token if not empty, and
// reads the certificate and bundle from the answer.
func (h *HTTPIssuer) post(ctx context.Context, hc *http.Client, url, token string, csr []byte) ([]*x509.Certificate, *x509bundle.Bundle, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(csr))
	if err != nil {
		return nil, nil, fmt.Errorf("pki: %w", err)
	}
	req.Header.Set("Content-Type", ContentTypeCSR)
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	body, err := h.do(hc, req)
	if err != nil {
		return nil, nil, err
	}
	var ir issueResponse
	if err := json.Unmarshal(body, &ir); err != nil {
		return nil, nil, fmt.Errorf("pki: issuance response: %w", err)
	}
	chain, err := parsePEMCertificates([]byte(ir.CertificateChain))
	if err != nil {
		return nil, nil, fmt.Errorf("pki: issuance response: certificate chain: %w", err)
	}
	if len(chain) == 0 {
		return nil, nil, errors.New("pki: issuance response: no certificate chain")
	}
	id, err := spiffeid.FromString(ir.SPIFFEID)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: issuance response: spiffe_id: %w", err)
	}
	roots, err := parsePEMCertificates([]byte(ir.TrustBundle))
	if err != nil {
		return nil, nil, fmt.Errorf("pki: issuance response: trust bundle: %w", err)
	}
	var bundle *x509bundle.Bundle
	if len(roots) > 0 {
		bundle = x509bundle.FromX509Authorities(id.TrustDomain(), roots)
	}
	return chain, bundle, nil
}

// FetchBundle implements BundleFetcher: it reads the SPIFFE bundle document
// at BundleURL.
func (h *HTTPIssuer) FetchBundle(ctx context.Context, td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	if h.BundleURL == "" {
		return nil, errors.New("pki: HTTPIssuer has no BundleURL")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.BundleURL, nil)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	body, err := h.do(h.client(), req)
	if err != nil {
		return nil, err
	}
	b, err := spiffebundle.Parse(td, body)
	if err != nil {
		return nil, fmt.Errorf("pki: trust bundle: %w", err)
	}
	return b.X509Bundle(), nil
}

// client is HTTPClient, or the default.
func (h *HTTPIssuer) client() *http.Client {
	if h.HTTPClient != nil {
		return h.HTTPClient
	}
	return &http.Client{Timeout: 30 * time.Second}
}

// do sends req with hc and returns the body of a 200 response; any other
// status is an error carrying the server's OAuth-style error, if any.
func (h *HTTPIssuer) do(hc *http.Client, req *http.Request) ([]byte, error) {
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return nil, fmt.Errorf("pki: read %s: %w", req.URL, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Code        string `json:"error"`
			Description string `json:"error_description"`
		}
		json.Unmarshal(body, &e)
		return nil, fmt.Errorf("pki: %s %s: HTTP %d %s: %s", req.Method, req.URL, resp.StatusCode, e.Code, e.Description)
	}
	return body, nil
}

// parsePEMCertificates reads every CERTIFICATE block of data.
func parsePEMCertificates(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return certs, nil
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, c)
	}
}

// Interface guards.
var (
	_ Issuer        = (*HTTPIssuer)(nil)
	_ Renewer       = (*HTTPIssuer)(nil)
	_ BundleFetcher = (*HTTPIssuer)(nil)
)
