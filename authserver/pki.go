package authserver

import (
	"context"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"

	"github.com/gatehouse-dev/gatehouse/internal/ca"
	"github.com/gatehouse-dev/gatehouse/internal/jose"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/pki"
)

// Paths of the certificate issuance extension below the issuer. Clients find
// them in discovery as gatehouse_pki_issue_endpoint and
// gatehouse_pki_bundle_endpoint.
const (
	pathPKIIssue  = "/pki/v1/issue"
	pathPKIBundle = "/pki/v1/bundle"
)

// maxCSRBytes bounds a certificate request; a P-256 request is about 300.
const maxCSRBytes = 16 << 10

// bundleRefreshHint is the refresh hint of the served SPIFFE bundle.
const bundleRefreshHint = 5 * time.Minute

// pkiRealm is the realm of the issuance endpoint's Bearer challenges.
const pkiRealm = "gatehouse"

// registerPKI serves the issuance extension when Config.CA is set:
//
//	POST /pki/v1/issue   a service, authenticated by its own client_credentials
//	                     access token, submits a PKCS #10 request and gets a
//	                     certificate for spiffe://<td>/svc/<client_id>
//	GET  /pki/v1/bundle  the trust bundle, as a SPIFFE bundle document
func (s *Server) registerPKI(prefix string) {
	if s.cfg.CA == nil {
		return
	}
	s.mux.HandleFunc("POST "+prefix+pathPKIIssue, s.handlePKIIssue)
	s.mux.HandleFunc("GET "+prefix+pathPKIBundle, s.handlePKIBundle)
}

// pkiEndpoints returns the URLs discovery announces; empty without a CA.
func (s *Server) pkiEndpoints() (issue, bundle string) {
	if s.cfg.CA == nil {
		return "", ""
	}
	return s.cfg.Issuer + pathPKIIssue, s.cfg.Issuer + pathPKIBundle
}

// certificateResponse is the issuance endpoint's answer (docs/mtls.md).
type certificateResponse struct {
	SPIFFEID         string    `json:"spiffe_id"`
	CertificateChain string    `json:"certificate_chain"` // PEM, leaf first
	TrustBundle      string    `json:"trust_bundle"`      // PEM roots
	ExpiresAt        time.Time `json:"expires_at"`
}

func (s *Server) handlePKIIssue(w http.ResponseWriter, r *http.Request) {
	resp, err := s.issueCertificate(w, r)
	if err != nil {
		oauth.WriteError(w, err)
		return
	}
	oauth.WriteJSON(w, http.StatusOK, resp)
}

// issueCertificate authenticates the service, reads its request and has the
// CA sign it for the service's client ID. A join token is used up only
// once the request has passed every check, so a bad request leaves it
// usable.
func (s *Server) issueCertificate(w http.ResponseWriter, r *http.Request) (*certificateResponse, error) {
	ctx := r.Context()
	caller, err := s.issuanceCaller(ctx, r)
	if err != nil {
		return nil, err
	}
	client := caller.client
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != pki.ContentTypeCSR {
		return nil, &oauth.Error{Code: oauth.ErrInvalidRequest, Status: http.StatusUnsupportedMediaType,
			Description: "content type must be " + pki.ContentTypeCSR + " (a DER PKCS #10 request)"}
	}
	der, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxCSRBytes))
	if err != nil {
		return nil, &oauth.Error{Code: oauth.ErrInvalidRequest, Status: http.StatusRequestEntityTooLarge, Description: "request too large"}
	}
	if _, err := s.cfg.CA.CheckCSR(der, client.ID); err != nil {
		return nil, s.csrError(ctx, client, err)
	}
	if caller.joinHash != "" {
		if err := s.useJoinToken(ctx, caller.joinHash, client.ID); err != nil {
			return nil, err
		}
	}
	chain, err := s.cfg.CA.SignCSR(der, client.ID)
	if err != nil {
		return nil, s.csrError(ctx, client, err)
	}
	bundle, err := s.cfg.CA.Bundle()
	if err != nil {
		return nil, s.internal(ctx, "trust bundle", err)
	}
	leaf := chain[0]
	resp := &certificateResponse{SPIFFEID: leaf.URIs[0].String(), ExpiresAt: leaf.NotAfter.UTC()}
	for _, c := range chain {
		resp.CertificateChain += string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
	}
	for _, c := range bundle.X509Authorities() {
		resp.TrustBundle += string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
	}
	s.audit(ctx, "certificate issued", "client_id", client.ID, "spiffe_id", resp.SPIFFEID, "auth", caller.method,
		"serial", hex.EncodeToString(leaf.SerialNumber.Bytes()), "not_after", resp.ExpiresAt)
	return resp, nil
}

// csrError maps the CA's refusal of a request to the answer.
func (s *Server) csrError(ctx context.Context, client store.Client, err error) error {
	switch {
	case errors.Is(err, ca.ErrIDNotAllowed):
		s.audit(ctx, "certificate refused", "client_id", client.ID, "reason", err.Error())
		return &oauth.Error{Code: oauth.ErrAccessDenied, Description: strings.TrimPrefix(err.Error(), "ca: ")}
	case errors.Is(err, ca.ErrInvalidRequest):
		return oauth.Errorf(oauth.ErrInvalidRequest, "%s", strings.TrimPrefix(err.Error(), "ca: "))
	}
	return s.internal(ctx, "issue certificate", err)
}

// serviceClient authenticates the caller by its bearer access token: a JWT
// this server signed, whose audience is this server's issuer (so that no
// service that received the token as a resource server can replay it here),
// minted by client_credentials (the client acting for itself), for a client
// that is enabled and still allowed that grant. A token bound to a
// certificate (RFC 8705) is accepted only from a connection presenting it.
func (s *Server) serviceClient(ctx context.Context, r *http.Request) (store.Client, error) {
	c, _, err := s.serviceCaller(ctx, r, "get a certificate")
	return c, err
}

// serviceCaller is serviceClient, also returning the token's scopes; what
// names the action in the access_denied description.
func (s *Server) serviceCaller(ctx context.Context, r *http.Request, what string) (store.Client, []string, error) {
	raw, ok := bearer(r.Header.Get("Authorization"))
	if !ok {
		return store.Client{}, nil, &oauth.Error{Code: oauth.ErrInvalidRequest, Status: http.StatusUnauthorized,
			Description: "a bearer access token is required", Challenge: oauth.BearerChallenge(pkiRealm, "", "")}
	}
	claims, err := jose.Verify(ctx, raw, s.keys.published(), jose.Expect{
		Issuer: s.cfg.Issuer, Audience: []string{s.cfg.Issuer}, Types: []string{jose.TypeAccessToken}, Now: s.cfg.Now()})
	if errors.Is(err, jose.ErrInvalid) {
		const desc = "the access token is invalid, expired, or not for this server's audience"
		return store.Client{}, nil, &oauth.Error{Code: oauth.ErrInvalidToken, Description: desc,
			Challenge: oauth.BearerChallenge(pkiRealm, oauth.ErrInvalidToken, desc)}
	}
	if err != nil {
		return store.Client{}, nil, s.internal(ctx, "verify access token", err)
	}
	if !presentedBy(r, claims.Cnf) {
		return store.Client{}, nil, &oauth.Error{Code: oauth.ErrInvalidToken, Description: errBindingMismatch,
			Challenge: oauth.BearerChallenge(pkiRealm, oauth.ErrInvalidToken, errBindingMismatch)}
	}
	// Revoked tokens, and tokens issued before the client was last
	// disabled, as at introspection.
	valid, err := s.stillValid(ctx, claims, true)
	if err != nil {
		return store.Client{}, nil, s.internal(ctx, "check access token", err)
	}
	if !valid {
		const desc = "the access token has been revoked"
		return store.Client{}, nil, &oauth.Error{Code: oauth.ErrInvalidToken, Description: desc,
			Challenge: oauth.BearerChallenge(pkiRealm, oauth.ErrInvalidToken, desc)}
	}
	denied := &oauth.Error{Code: oauth.ErrAccessDenied,
		Description: "only an enabled client's own client_credentials token may " + what}
	if claims.ClientID == "" || claims.Subject != claims.ClientID || claims.SessionID != "" || claims.Username != "" {
		return store.Client{}, nil, denied
	}
	c, err := s.service(ctx, claims.ClientID, denied)
	if err != nil {
		return store.Client{}, nil, err
	}
	return c, strings.Fields(claims.Scope), nil
}

// service returns the client id if it is a service in the sense of the
// issuance endpoint and the SSF API: enabled, and allowed
// client_credentials. Otherwise it returns denied.
func (s *Server) service(ctx context.Context, id string, denied error) (store.Client, error) {
	c, err := s.cfg.Store.GetClient(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.Client{}, denied
	}
	if err != nil {
		return store.Client{}, s.internal(ctx, "get client", err)
	}
	if c.Disabled || !slices.Contains(c.Grants, oauth.GrantClientCredentials) {
		return store.Client{}, denied
	}
	return c, nil
}

// bearer returns the token of an "Authorization: Bearer" header (RFC 6750
// §2.1; the scheme is case-insensitive).
func bearer(h string) (string, bool) {
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" || strings.ContainsAny(token, " \t") {
		return "", false
	}
	return token, true
}

func (s *Server) handlePKIBundle(w http.ResponseWriter, r *http.Request) {
	b, err := s.cfg.CA.Bundle()
	if err != nil {
		oauth.WriteError(w, s.internal(r.Context(), "trust bundle", err))
		return
	}
	doc := spiffebundle.FromX509Bundle(b)
	doc.SetRefreshHint(bundleRefreshHint)
	data, err := doc.Marshal()
	if err != nil {
		oauth.WriteError(w, s.internal(r.Context(), "marshal trust bundle", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=60")
	w.Write(data)
}
