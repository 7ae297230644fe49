package authserver_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/gatehouse-dev/gatehouse/authserver"
	"github.com/gatehouse-dev/gatehouse/internal/accounts"
	"github.com/gatehouse-dev/gatehouse/internal/ca"
	"github.com/gatehouse-dev/gatehouse/internal/keyring"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/internal/password"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/sqlite"
	"github.com/gatehouse-dev/gatehouse/pki"
)

var fastPasswords = password.Params{Memory: 64, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16}

// pkiServer is an authorization server with a CA, on loopback, and the
// secrets of the clients it knows.
type pkiServer struct {
	url     string
	ca      *ca.CA
	store   store.Store
	secrets map[string]string
}

func newPKIServer(t *testing.T, withCA bool) *pkiServer {
	t.Helper()
	ctx := context.Background()
	srv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + srv.Listener.Addr().String()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "gh.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	kr := keyring.Generate()
	ps := &pkiServer{url: issuer, store: st, secrets: map[string]string{}}
	if withCA {
		if ps.ca, err = ca.Init(ca.Config{TrustDomain: spiffeid.RequireTrustDomainFromString("example.org")}); err != nil {
			t.Fatal(err)
		}
	}
	m := &accounts.Manager{Store: st, Secrets: kr.Hasher(keyring.PurposeClientSecret), Params: fastPasswords}
	cc := []string{oauth.GrantClientCredentials}
	for _, spec := range []accounts.ClientSpec{
		{ID: "orders", Grants: cc, Audience: []string{issuer}},
		{ID: "billing", Grants: cc, Audience: []string{"demo-api"}},                    // tokens for the services, not for us
		{ID: "web", Grants: []string{oauth.GrantPassword}, Audience: []string{issuer}}, // user tokens
		{ID: "svc@corp", Grants: cc, Audience: []string{issuer}},                       // not a SPIFFE path segment
	} {
		_, secret, err := m.PutClient(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		ps.secrets[spec.ID] = secret
	}
	if _, err := m.AddUser(ctx, "alice", "alice-password-1", nil); err != nil {
		t.Fatal(err)
	}
	as, err := authserver.New(ctx, authserver.Config{Issuer: issuer, Store: st, Keyring: kr, CA: ps.ca,
		Audience: []string{"demo-api"}, PasswordParams: fastPasswords})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = as
	srv.Start()
	t.Cleanup(srv.Close)
	return ps
}

func (ps *pkiServer) token(t *testing.T, clientID string, params url.Values) string {
	t.Helper()
	tc := &oauth.TokenClient{TokenURL: ps.url + "/oauth2/token", ClientID: clientID, ClientSecret: ps.secrets[clientID]}
	resp, err := tc.Token(context.Background(), params)
	if err != nil {
		t.Fatalf("token for %s: %v", clientID, err)
	}
	return resp.AccessToken
}

func (ps *pkiServer) serviceToken(t *testing.T, clientID string) string {
	return ps.token(t, clientID, url.Values{"grant_type": {oauth.GrantClientCredentials}})
}

func (ps *pkiServer) discovery(t *testing.T) map[string]any {
	t.Helper()
	resp, err := http.Get(ps.url + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func newCSR(t *testing.T, tmpl *x509.CertificateRequest) []byte {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestPKIIssueEndpoint(t *testing.T) {
	ps := newPKIServer(t, true)
	d := ps.discovery(t)
	issueURL, _ := d["gatehouse_pki_issue_endpoint"].(string)
	bundleURL, _ := d["gatehouse_pki_bundle_endpoint"].(string)
	if issueURL != ps.url+"/pki/v1/issue" || bundleURL != ps.url+"/pki/v1/bundle" {
		t.Fatalf("got discovery endpoints %q, %q, want the issuance extension", issueURL, bundleURL)
	}
	ordersToken := ps.serviceToken(t, "orders")
	uri := func(s string) []*url.URL { u, _ := url.Parse(s); return []*url.URL{u} }
	tampered := newCSR(t, &x509.CertificateRequest{})
	tampered[len(tampered)-3] ^= 0xff

	tests := []struct {
		name        string
		token       string
		contentType string
		body        []byte
		method      string
		status      int
		code        string
	}{
		{"valid token and CSR", ordersToken, pki.ContentTypeCSR, newCSR(t, &x509.CertificateRequest{}), "", 200, ""},
		{"CSR naming its own ID", ordersToken, pki.ContentTypeCSR,
			newCSR(t, &x509.CertificateRequest{URIs: uri("spiffe://example.org/svc/orders")}), "", 200, ""},
		{"no token", "", pki.ContentTypeCSR, newCSR(t, &x509.CertificateRequest{}), "", 401, "invalid_request"},
		{"garbage token", "not.a.jwt", pki.ContentTypeCSR, newCSR(t, &x509.CertificateRequest{}), "", 401, "invalid_token"},
		{"token for another audience", ps.serviceToken(t, "billing"), pki.ContentTypeCSR, newCSR(t, &x509.CertificateRequest{}), "", 401, "invalid_token"},
		{"a user's token", ps.token(t, "web", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"alice-password-1"}}),
			pki.ContentTypeCSR, newCSR(t, &x509.CertificateRequest{}), "", 403, "access_denied"},
		{"another service's ID in the CSR", ordersToken, pki.ContentTypeCSR,
			newCSR(t, &x509.CertificateRequest{URIs: uri("spiffe://example.org/svc/gateway")}), "", 403, "access_denied"},
		{"a DNS SAN in the CSR", ordersToken, pki.ContentTypeCSR,
			newCSR(t, &x509.CertificateRequest{DNSNames: []string{"orders.internal"}}), "", 400, "invalid_request"},
		{"bad CSR", ordersToken, pki.ContentTypeCSR, []byte("-----BEGIN CERTIFICATE REQUEST-----"), "", 400, "invalid_request"},
		{"bad CSR signature", ordersToken, pki.ContentTypeCSR, tampered, "", 400, "invalid_request"},
		{"empty body", ordersToken, pki.ContentTypeCSR, nil, "", 400, "invalid_request"},
		{"wrong content type", ordersToken, "application/json", []byte(`{}`), "", 415, "invalid_request"},
		{"too large", ordersToken, pki.ContentTypeCSR, bytes.Repeat([]byte{0x30}, 64<<10), "", 413, "invalid_request"},
		{"client id that is no SPIFFE name", ps.serviceToken(t, "svc@corp"), pki.ContentTypeCSR, newCSR(t, &x509.CertificateRequest{}), "", 400, "invalid_request"},
		{"GET", ordersToken, "", nil, http.MethodGet, 405, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = http.MethodPost
			}
			req, _ := http.NewRequest(method, issueURL, bytes.NewReader(tt.body))
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			if tt.token != "" {
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status {
				t.Fatalf("got HTTP %d %s, want %d", resp.StatusCode, body, tt.status)
			}
			if tt.status == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer ") {
				t.Errorf("got WWW-Authenticate %q, want a Bearer challenge", resp.Header.Get("WWW-Authenticate"))
			}
			if tt.code != "" {
				var e struct{ Error, ErrorDescription string }
				if json.Unmarshal(body, &e); e.Error != tt.code {
					t.Fatalf("got error %q (%s), want %q", e.Error, body, tt.code)
				}
			}
			if tt.status == 200 {
				checkIssued(t, body, "spiffe://example.org/svc/orders")
			}
		})
	}
}

// checkIssued parses a 200 answer and checks its certificate is for want and
// verifies against its bundle.
func checkIssued(t *testing.T, body []byte, want string) {
	t.Helper()
	var r struct {
		SPIFFEID         string `json:"spiffe_id"`
		CertificateChain string `json:"certificate_chain"`
		TrustBundle      string `json:"trust_bundle"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode([]byte(r.CertificateChain))
	if block == nil {
		t.Fatalf("got no PEM certificate in %s", body)
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	b, err := x509bundle.Parse(spiffeid.RequireTrustDomainFromString("example.org"), []byte(r.TrustBundle))
	if err != nil {
		t.Fatal(err)
	}
	id, _, err := x509svid.Verify([]*x509.Certificate{leaf}, b)
	if err != nil || id.String() != want || r.SPIFFEID != want {
		t.Fatalf("got %q (%q), %v, want %q verified against the returned bundle", id, r.SPIFFEID, err, want)
	}
}

// TestPKIRotatingSourceOverHTTP runs pki's HTTPIssuer and RotatingSource
// against the endpoint: the contract between the library and the server.
func TestPKIRotatingSourceOverHTTP(t *testing.T) {
	ps := newPKIServer(t, true)
	iss := &pki.HTTPIssuer{
		IssueURL:  ps.url + "/pki/v1/issue",
		BundleURL: ps.url + "/pki/v1/bundle",
		Token:     func(context.Context) (string, error) { return ps.serviceToken(t, "orders"), nil },
	}
	src, err := pki.NewRotatingSource(context.Background(), iss)
	if err != nil {
		t.Fatalf("NewRotatingSource: %v", err)
	}
	defer src.Close()
	svid, _ := src.GetX509SVID()
	if svid.ID.String() != "spiffe://example.org/svc/orders" {
		t.Fatalf("got %q, want the ID bound to client orders", svid.ID)
	}
	td := spiffeid.RequireTrustDomainFromString("example.org")
	fetched, err := iss.FetchBundle(context.Background(), td)
	if err != nil {
		t.Fatalf("FetchBundle: %v", err)
	}
	want, _ := ps.ca.Bundle()
	if !fetched.Equal(want) {
		t.Fatalf("the fetched bundle differs from the CA's")
	}
	bad := &pki.HTTPIssuer{IssueURL: iss.IssueURL, Token: func(context.Context) (string, error) { return ps.serviceToken(t, "billing"), nil }}
	if _, err := pki.NewRotatingSource(context.Background(), bad); err == nil || !strings.Contains(err.Error(), "invalid_token") {
		t.Fatalf("got %v, want the server's invalid_token", err)
	}
}

func TestPKIEndpointAbsentWithoutCA(t *testing.T) {
	ps := newPKIServer(t, false)
	if _, ok := ps.discovery(t)["gatehouse_pki_issue_endpoint"]; ok {
		t.Fatalf("discovery announces an issuance endpoint without a CA")
	}
	resp, err := http.Post(ps.url+"/pki/v1/issue", pki.ContentTypeCSR, bytes.NewReader(newCSR(t, &x509.CertificateRequest{})))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("got HTTP %d, want 404", resp.StatusCode)
	}
}

// TestPKIIssueRefusesRevokedToken: a service token revoked at the RFC 7009
// endpoint gets no certificate, though its signature and exp are fine.
func TestPKIIssueRefusesRevokedToken(t *testing.T) {
	ps := newPKIServer(t, true)
	issue := func(token string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, ps.url+"/pki/v1/issue", bytes.NewReader(newCSR(t, &x509.CertificateRequest{})))
		req.Header.Set("Content-Type", pki.ContentTypeCSR)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e struct{ Error string }
		json.NewDecoder(resp.Body).Decode(&e)
		return resp.StatusCode, e.Error
	}
	token := ps.serviceToken(t, "orders")
	if status, code := issue(token); status != http.StatusOK {
		t.Fatalf("before revocation: got %d %s, want 200", status, code)
	}
	req, _ := http.NewRequest(http.MethodPost, ps.url+"/oauth2/revoke", strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("orders", ps.secrets["orders"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: got %d, want 200", resp.StatusCode)
	}
	if status, code := issue(token); status != http.StatusUnauthorized || code != oauth.ErrInvalidToken {
		t.Errorf("after revocation: got %d %q, want 401 invalid_token", status, code)
	}
	if status, code := issue(ps.serviceToken(t, "orders")); status != http.StatusOK {
		t.Errorf("a new token: got %d %s, want 200", status, code)
	}
}
