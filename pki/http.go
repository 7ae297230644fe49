package pki

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Media types of the issuance protocol.
const (
	// ContentTypeCSR is a DER-encoded PKCS #10 request (RFC 5967).
	ContentTypeCSR = "application/pkcs10"
)

// maxResponse bounds what HTTPIssuer reads from the server.
const maxResponse = 1 << 20

// HTTPIssuer gets certificates from a Gatehouse authorization server: it
// posts a certificate request with the service's own access token (a
// client_credentials token whose audience is the server) to the issuance
// endpoint, and the server returns a certificate whose SPIFFE ID is
// spiffe://<trust-domain>/svc/<client_id>. It implements Issuer and, when
// BundleURL is set, BundleFetcher. The protocol is in docs/mtls.md.
type HTTPIssuer struct {
	// IssueURL is the issuance endpoint, "gatehouse_pki_issue_endpoint" in
	// the server's discovery document. Required.
	IssueURL string
	// BundleURL is the trust bundle endpoint (a SPIFFE bundle document),
	// "gatehouse_pki_bundle_endpoint" in discovery. If empty, FetchBundle
	// fails and the bundle is refreshed only with each certificate.
	BundleURL string
	// Token returns the access token to authenticate with. Required.
	Token func(ctx context.Context) (string, error)
	// HTTPClient; if nil, a client with a 30s timeout. Use one that trusts
	// the authorization server's web certificate.
	HTTPClient *http.Client
}

// issueResponse is the issuance endpoint's answer.
type issueResponse struct {
	SPIFFEID         string    `json:"spiffe_id"`
	CertificateChain string    `json:"certificate_chain"`
	TrustBundle      string    `json:"trust_bundle"`
	ExpiresAt        time.Time `json:"expires_at"`
}

// Issue implements Issuer.
func (h *HTTPIssuer) Issue(ctx context.Context, csr []byte) ([]*x509.Certificate, *x509bundle.Bundle, error) {
	if h.IssueURL == "" || h.Token == nil {
		return nil, nil, errors.New("pki: HTTPIssuer needs IssueURL and Token")
	}
	token, err := h.Token(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: access token: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.IssueURL, bytes.NewReader(csr))
	if err != nil {
		return nil, nil, fmt.Errorf("pki: %w", err)
	}
	req.Header.Set("Content-Type", ContentTypeCSR)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	body, err := h.do(req)
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
	body, err := h.do(req)
	if err != nil {
		return nil, err
	}
	b, err := spiffebundle.Parse(td, body)
	if err != nil {
		return nil, fmt.Errorf("pki: trust bundle: %w", err)
	}
	return b.X509Bundle(), nil
}

// do sends req and returns the body of a 200 response; any other status is
// an error carrying the server's OAuth-style error, if any.
func (h *HTTPIssuer) do(req *http.Request) ([]byte, error) {
	hc := h.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
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
	_ BundleFetcher = (*HTTPIssuer)(nil)
)
