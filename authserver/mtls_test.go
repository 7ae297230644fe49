package authserver_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/gatehouse-dev/gatehouse/authserver"
	"github.com/gatehouse-dev/gatehouse/internal/accounts"
	"github.com/gatehouse-dev/gatehouse/internal/ca"
	"github.com/gatehouse-dev/gatehouse/internal/jose"
	"github.com/gatehouse-dev/gatehouse/internal/keyring"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/sqlite"
	"github.com/gatehouse-dev/gatehouse/pki"
)

var exampleTD = spiffeid.RequireTrustDomainFromString("example.org")

// mtlsServer is an authorization server with a CA and a mutual-TLS
// listener, on loopback.
type mtlsServer struct {
	issuer  string // the plain listener
	mtlsURL string // the mutual-TLS listener
	ca      *ca.CA
	store   store.Store
	keyring *keyring.Keyring
	admin   *authserver.Admin
	secrets map[string]string
}

// newMTLSServer starts a server whose clients are
//   - orders: tls_client_auth, client_credentials, tokens for the issuer
//     and "demo-api";
//   - bound: a secret, client_credentials, certificate-bound tokens;
//   - plain: a secret, client_credentials and token exchange to "demo-api";
//   - web: a secret and the password grant (user alice);
//   - retired: tls_client_auth, disabled.
func newMTLSServer(t *testing.T) *mtlsServer {
	t.Helper()
	ctx := context.Background()
	plainLn, mtlsLn := listen(t), listen(t)
	ms := &mtlsServer{issuer: "http://" + plainLn.Addr().String(), mtlsURL: "https://" + mtlsLn.Addr().String(),
		secrets: map[string]string{}}
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "gh.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ms.store = st
	if ms.ca, err = ca.Init(ca.Config{TrustDomain: exampleTD}); err != nil {
		t.Fatal(err)
	}
	kr := keyring.Generate()
	ms.keyring = kr
	m := &accounts.Manager{Store: st, Secrets: kr.Hasher(keyring.PurposeClientSecret), Params: fastPasswords}
	cc := []string{oauth.GrantClientCredentials}
	for _, spec := range []accounts.ClientSpec{
		{ID: "orders", AuthMethod: store.AuthTLSClientAuth, Grants: cc, Audience: []string{ms.issuer, "demo-api"}},
		{ID: "bound", Grants: cc, Audience: []string{ms.issuer, "demo-api"}, CertificateBound: true},
		{ID: "plain", Grants: []string{oauth.GrantClientCredentials, oauth.GrantTokenExchange}, Audience: []string{"demo-api"},
			ExchangeAudiences: []string{"demo-api"}},
		{ID: "web", Grants: []string{oauth.GrantPassword}, Scopes: []string{"openid"}},
		{ID: "retired", AuthMethod: store.AuthTLSClientAuth, Grants: cc, Audience: []string{ms.issuer}},
	} {
		_, secret, err := m.PutClient(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		ms.secrets[spec.ID] = secret
	}
	if _, err := st.UpdateClient(ctx, "retired", func(c *store.Client) error { c.Disabled = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := m.AddUser(ctx, "alice", "alice-password-1", nil); err != nil {
		t.Fatal(err)
	}
	as, err := authserver.New(ctx, authserver.Config{Issuer: ms.issuer, Store: st, Keyring: kr, CA: ms.ca,
		MTLS: &authserver.MTLS{URL: ms.mtlsURL}, Audience: []string{"demo-api"}, PasswordParams: fastPasswords})
	if err != nil {
		t.Fatal(err)
	}
	if ms.admin, err = authserver.NewAdmin(authserver.AdminConfig{Store: st, Keyring: kr}); err != nil {
		t.Fatal(err)
	}
	serve(t, plainLn, as)
	serverCert := pki.NewStaticSource(issueSVID(t, ms.ca, "authserver"), ms.bundle(t))
	serve(t, tls.NewListener(mtlsLn, authserver.MTLSListenerConfig(tlsconfig.GetCertificate(serverCert))), as.MTLSHandler())
	return ms
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func serve(t *testing.T, ln net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

// issueSVID issues a certificate of c for the service name, with a fresh key.
func issueSVID(t *testing.T, c *ca.CA, name string) *x509svid.SVID {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	chain, err := c.Issue(key.Public(), name)
	if err != nil {
		t.Fatal(err)
	}
	id, err := x509svid.IDFromCert(chain[0])
	if err != nil {
		t.Fatal(err)
	}
	return &x509svid.SVID{ID: id, Certificates: chain, PrivateKey: key}
}

func (ms *mtlsServer) bundle(t *testing.T) *x509bundle.Bundle {
	t.Helper()
	b, err := ms.ca.Bundle()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// client returns an HTTP client that presents svid (none if nil) and
// expects the authorization server's SPIFFE ID on TLS connections.
func (ms *mtlsServer) client(t *testing.T, svid *x509svid.SVID) *http.Client {
	t.Helper()
	server := pki.AuthorizeID(spiffeid.RequireFromString("spiffe://example.org/svc/authserver"))
	cfg := tlsconfig.TLSClientConfig(ms.bundle(t), tlsconfig.Authorizer(server))
	if svid != nil {
		cfg = pki.ClientConfig(svid, ms.bundle(t), server)
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
}

// post sends form to url with hc, authenticating clientID with its secret
// (Basic) if it has one, else naming it in the form.
func (ms *mtlsServer) post(t *testing.T, hc *http.Client, url, clientID string, form url.Values) (int, map[string]any) {
	t.Helper()
	form = cloneForm(form)
	if ms.secrets[clientID] == "" {
		form.Set("client_id", clientID)
	}
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if s := ms.secrets[clientID]; s != "" {
		req.SetBasicAuth(clientID, s)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	var body map[string]any
	json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

func cloneForm(f url.Values) url.Values {
	out := url.Values{}
	for k, v := range f {
		out[k] = slices.Clone(v)
	}
	return out
}

// claims verifies an access token with the server's keys and returns its
// claims.
func (ms *mtlsServer) claims(t *testing.T, raw string) *jose.Claims {
	t.Helper()
	resp, err := http.Get(ms.issuer + "/oauth2/jwks")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	keys, err := jose.ParseKeySet(data)
	if err != nil {
		t.Fatal(err)
	}
	c, err := jose.Verify(context.Background(), raw, keys, jose.Expect{Issuer: ms.issuer,
		Audience: []string{"demo-api", ms.issuer}, Types: []string{jose.TypeAccessToken}})
	if err != nil {
		t.Fatalf("verify access token: %v", err)
	}
	return c
}

func thumbprint(svid *x509svid.SVID) string {
	return jose.CertificateThumbprint(svid.Certificates[0].Raw)
}

func TestMTLSDiscovery(t *testing.T) {
	ms := newMTLSServer(t)
	resp, err := http.Get(ms.issuer + "/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d struct {
		Bound       bool              `json:"tls_client_certificate_bound_access_tokens"`
		Aliases     map[string]string `json:"mtls_endpoint_aliases"`
		AuthMethods []string          `json:"token_endpoint_auth_methods_supported"`
		Introspect  []string          `json:"introspection_endpoint_auth_methods_supported"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"token_endpoint":               ms.mtlsURL + "/oauth2/token",
		"introspection_endpoint":       ms.mtlsURL + "/oauth2/introspect",
		"revocation_endpoint":          ms.mtlsURL + "/oauth2/revoke",
		"userinfo_endpoint":            ms.mtlsURL + "/oauth2/userinfo",
		"gatehouse_pki_issue_endpoint": ms.mtlsURL + "/pki/v1/issue",
	}
	if !d.Bound || !mapsEqual(d.Aliases, want) {
		t.Errorf("got tls_client_certificate_bound_access_tokens %v, mtls_endpoint_aliases %v, want true and %v", d.Bound, d.Aliases, want)
	}
	if !slices.Contains(d.AuthMethods, "tls_client_auth") || !slices.Contains(d.Introspect, "tls_client_auth") {
		t.Errorf("got auth methods %v and %v, want tls_client_auth in both", d.AuthMethods, d.Introspect)
	}
	// The mutual-TLS listener serves the aliases only.
	hc := ms.client(t, nil)
	r, err := hc.Get(ms.mtlsURL + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusNotFound {
		t.Errorf("GET discovery on the mutual-TLS listener: got HTTP %d, want 404", r.StatusCode)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestMTLSTokenBinding(t *testing.T) {
	ms := newMTLSServer(t)
	orders, billing := issueSVID(t, ms.ca, "orders"), issueSVID(t, ms.ca, "billing")
	foreignCA, err := ca.Init(ca.Config{TrustDomain: exampleTD})
	if err != nil {
		t.Fatal(err)
	}
	foreign := issueSVID(t, foreignCA, "orders") // the right name, from a CA the server does not trust
	plainTLS := func(svid *x509svid.SVID) *http.Client {
		// Trusts nothing about the server: only for the cases where the
		// request must fail before it matters.
		return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true,
			Certificates: []tls.Certificate{{Certificate: [][]byte{svid.Certificates[0].Raw}, PrivateKey: svid.PrivateKey}}}}}
	}
	cc := url.Values{"grant_type": {oauth.GrantClientCredentials}}
	tests := []struct {
		name     string
		client   string
		hc       *http.Client
		mtls     bool   // the mutual-TLS listener, else the plain one
		status   int    // of the token request
		code     string // its error
		boundTo  *x509svid.SVID
		contains string // in the error description
	}{
		{"tls_client_auth with its certificate", "orders", ms.client(t, orders), true, 200, "", orders, ""},
		{"tls_client_auth without a certificate", "orders", ms.client(t, nil), true, 401, "invalid_client", nil, ""},
		{"tls_client_auth over the plain listener", "orders", http.DefaultClient, false, 401, "invalid_client", nil, ""},
		{"tls_client_auth with another service's certificate", "orders", ms.client(t, billing), true, 401, "invalid_client", nil, ""},
		{"tls_client_auth with an untrusted certificate", "orders", plainTLS(foreign), true, 401, "invalid_client", nil, ""},
		{"tls_client_auth of a disabled client", "retired", ms.client(t, issueSVID(t, ms.ca, "retired")), true, 401, "invalid_client", nil, ""},
		{"secret and a certificate: bound", "plain", ms.client(t, billing), true, 200, "", billing, ""},
		{"secret without a certificate: unbound", "plain", ms.client(t, nil), true, 200, "", nil, ""},
		{"secret over the plain listener: unbound", "plain", http.DefaultClient, false, 200, "", nil, ""},
		{"bound client with a certificate", "bound", ms.client(t, billing), true, 200, "", billing, ""},
		{"bound client without a certificate", "bound", ms.client(t, nil), true, 400, "invalid_request", nil, "mutual TLS"},
		{"bound client over the plain listener", "bound", http.DefaultClient, false, 400, "invalid_request", nil, ms.mtlsURL + "/oauth2/token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := ms.issuer
			if tt.mtls {
				base = ms.mtlsURL
			}
			status, body := ms.post(t, tt.hc, base+"/oauth2/token", tt.client, cc)
			if status != tt.status || tt.code != "" && body["error"] != tt.code {
				t.Fatalf("got HTTP %d %v, want %d %s", status, body, tt.status, tt.code)
			}
			if desc, _ := body["error_description"].(string); !strings.Contains(desc, tt.contains) {
				t.Errorf("got error_description %q, want it to say %q", desc, tt.contains)
			}
			if status != 200 {
				return
			}
			raw, _ := body["access_token"].(string)
			c := ms.claims(t, raw)
			switch {
			case tt.boundTo == nil && c.Cnf != nil:
				t.Errorf("got cnf %+v, want an unbound token", c.Cnf)
			case tt.boundTo != nil && (c.Cnf == nil || c.Cnf.X5tS256 != thumbprint(tt.boundTo)):
				t.Errorf("got cnf %+v, want x5t#S256 %s", c.Cnf, thumbprint(tt.boundTo))
			}
		})
	}
}

// TestMTLSExchangeAndIntrospection: a token exchanged over mutual TLS is
// bound to the exchanging service's certificate, and introspection tells.
func TestMTLSExchangeAndIntrospection(t *testing.T) {
	ms := newMTLSServer(t)
	billing := issueSVID(t, ms.ca, "billing")
	hc := ms.client(t, billing)
	_, user := ms.post(t, http.DefaultClient, ms.issuer+"/oauth2/token", "web",
		url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"alice-password-1"}})
	subject, _ := user["access_token"].(string)
	status, body := ms.post(t, hc, ms.mtlsURL+"/oauth2/token", "plain", url.Values{
		"grant_type": {oauth.GrantTokenExchange}, "subject_token": {subject},
		"subject_token_type": {authserver.TokenTypeAccessToken}, "audience": {"demo-api"}})
	if status != 200 {
		t.Fatalf("token exchange: got HTTP %d %v, want 200", status, body)
	}
	exchanged, _ := body["access_token"].(string)
	if c := ms.claims(t, exchanged); c.Cnf == nil || c.Cnf.X5tS256 != thumbprint(billing) {
		t.Fatalf("exchanged token: got cnf %+v, want x5t#S256 %s", c.Cnf, thumbprint(billing))
	}
	for _, tt := range []struct {
		token string
		want  any
	}{
		{exchanged, map[string]any{"x5t#S256": thumbprint(billing)}},
		{subject, nil},
	} {
		_, in := ms.post(t, http.DefaultClient, ms.issuer+"/oauth2/introspect", "plain", url.Values{"token": {tt.token}})
		if in["active"] != true || !jsonEqual(in["cnf"], tt.want) {
			t.Errorf("introspection: got active %v, cnf %v, want true, %v", in["active"], in["cnf"], tt.want)
		}
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// TestMTLSBoundTokenAtIssuance: the issuance endpoint is a resource of the
// server too: a bound service token works only from its certificate's
// connection, and a service may renew with its certificate alone.
func TestMTLSBoundTokenAtIssuance(t *testing.T) {
	ms := newMTLSServer(t)
	orders, renewed := issueSVID(t, ms.ca, "orders"), issueSVID(t, ms.ca, "orders")
	_, body := ms.post(t, ms.client(t, orders), ms.mtlsURL+"/oauth2/token", "orders",
		url.Values{"grant_type": {oauth.GrantClientCredentials}})
	bound, _ := body["access_token"].(string)
	retired := issueSVID(t, ms.ca, "retired")
	tests := []struct {
		name   string
		hc     *http.Client
		base   string
		token  string
		status int
		code   string
	}{
		{"bound token from its certificate", ms.client(t, orders), ms.mtlsURL, bound, 200, ""},
		{"bound token over the plain listener", http.DefaultClient, ms.issuer, bound, 401, "invalid_token"},
		{"bound token from another certificate of the same service", ms.client(t, renewed), ms.mtlsURL, bound, 401, "invalid_token"},
		{"bound token without a certificate", ms.client(t, nil), ms.mtlsURL, bound, 401, "invalid_token"},
		{"renewal with the certificate alone", ms.client(t, orders), ms.mtlsURL, "", 200, ""},
		{"renewal with a disabled client's certificate", ms.client(t, retired), ms.mtlsURL, "", 403, "access_denied"},
		{"no token, no certificate", ms.client(t, nil), ms.mtlsURL, "", 401, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := postCSR(t, tt.hc, tt.base+"/pki/v1/issue", tt.token, newCSR(t, &x509.CertificateRequest{}))
			if status != tt.status {
				t.Fatalf("got HTTP %d %s, want %d", status, body, tt.status)
			}
			if tt.code != "" && !strings.Contains(string(body), `"error":"`+tt.code+`"`) {
				t.Fatalf("got %s, want error %s", body, tt.code)
			}
			if status == 200 {
				checkIssued(t, body, "spiffe://example.org/svc/orders")
			}
		})
	}
}

func postCSR(t *testing.T, hc *http.Client, url, token string, csr []byte) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(csr))
	req.Header.Set("Content-Type", pki.ContentTypeCSR)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

func TestMTLSUserinfoBinding(t *testing.T) {
	ms := newMTLSServer(t)
	if _, err := ms.store.UpdateClient(t.Context(), "web", func(c *store.Client) error { c.CertificateBound = true; return nil }); err != nil {
		t.Fatal(err)
	}
	alice := issueSVID(t, ms.ca, "alice-device")
	form := url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"alice-password-1"}, "scope": {"openid"}}
	status, body := ms.post(t, ms.client(t, alice), ms.mtlsURL+"/oauth2/token", "web", form)
	if status != 200 {
		t.Fatalf("password grant over mutual TLS: got HTTP %d %v", status, body)
	}
	at, _ := body["access_token"].(string)
	for _, tt := range []struct {
		name   string
		hc     *http.Client
		url    string
		status int
	}{
		{"from its certificate", ms.client(t, alice), ms.mtlsURL, 200},
		{"over the plain listener", http.DefaultClient, ms.issuer, 401},
		{"from another certificate", ms.client(t, issueSVID(t, ms.ca, "alice-device")), ms.mtlsURL, 401},
	} {
		req, _ := http.NewRequest(http.MethodGet, tt.url+"/oauth2/userinfo", nil)
		req.Header.Set("Authorization", "Bearer "+at)
		resp, err := tt.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("userinfo %s: got HTTP %d, want %d", tt.name, resp.StatusCode, tt.status)
		}
		if tt.status == 401 && !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("userinfo %s: got WWW-Authenticate %q, want invalid_token", tt.name, resp.Header.Get("WWW-Authenticate"))
		}
	}
}

// TestCertificateIssuedBeforeDisabling: a client's certificate issued
// before the client was last disabled neither authenticates it
// (tls_client_auth) nor renews after the client is enabled again, as its
// tokens of then stay dead; a certificate issued since works.
func TestCertificateIssuedBeforeDisabling(t *testing.T) {
	ms := newMTLSServer(t)
	old := issueSVID(t, ms.ca, "orders")
	cc := url.Values{"grant_type": {oauth.GrantClientCredentials}}
	renew := func(svid *x509svid.SVID) int {
		req, _ := http.NewRequest(http.MethodPost, ms.mtlsURL+"/pki/v1/issue", bytes.NewReader(newCSR(t, &x509.CertificateRequest{})))
		req.Header.Set("Content-Type", pki.ContentTypeCSR)
		resp, err := ms.client(t, svid).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if status, body := ms.post(t, ms.client(t, old), ms.mtlsURL+"/oauth2/token", "orders", cc); status != 200 {
		t.Fatalf("before the disabling: got %d %v, want 200", status, body)
	}
	if status := renew(old); status != 200 {
		t.Fatalf("renewal before the disabling: got %d, want 200", status)
	}
	for _, disabled := range []bool{true, false} {
		if _, err := ms.admin.SetClientDisabled(t.Context(), "orders", disabled); err != nil {
			t.Fatal(err)
		}
	}
	// ms.admin is not the server's own, so the server's client cache takes
	// up to a second to see the change; and X.509 times have whole seconds,
	// so a certificate issued a second after the enabling reads as issued
	// after the disabling.
	time.Sleep(1100 * time.Millisecond)
	if status, body := ms.post(t, ms.client(t, old), ms.mtlsURL+"/oauth2/token", "orders", cc); status != 401 || body["error"] != oauth.ErrInvalidClient {
		t.Errorf("tls_client_auth with the old certificate after enabling again: got %d %v, want 401 invalid_client", status, body)
	}
	if status := renew(old); status != http.StatusForbidden {
		t.Errorf("renewal with the old certificate after enabling again: got %d, want 403", status)
	}
	fresh := issueSVID(t, ms.ca, "orders")
	if status, body := ms.post(t, ms.client(t, fresh), ms.mtlsURL+"/oauth2/token", "orders", cc); status != 200 {
		t.Errorf("tls_client_auth with a new certificate: got %d %v, want 200", status, body)
	}
	if status := renew(fresh); status != 200 {
		t.Errorf("renewal with a new certificate: got %d, want 200", status)
	}
}

// TestMTLSBoundSubjectToken: a certificate-bound token is exchanged only
// over a connection presenting its certificate, so a client allowed token
// exchange cannot launder a stolen bound token into an unbound one.
func TestMTLSBoundSubjectToken(t *testing.T) {
	ms := newMTLSServer(t)
	billing, orders := issueSVID(t, ms.ca, "billing"), issueSVID(t, ms.ca, "orders")
	_, user := ms.post(t, http.DefaultClient, ms.issuer+"/oauth2/token", "web",
		url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"alice-password-1"}})
	exchange := func(hc *http.Client, base, subject string) (int, map[string]any) {
		return ms.post(t, hc, base+"/oauth2/token", "plain", url.Values{
			"grant_type": {oauth.GrantTokenExchange}, "subject_token": {subject},
			"subject_token_type": {authserver.TokenTypeAccessToken}, "audience": {"demo-api"}})
	}
	// A bound token: the user's token exchanged over billing's connection.
	status, body := exchange(ms.client(t, billing), ms.mtlsURL, user["access_token"].(string))
	bound, _ := body["access_token"].(string)
	if status != 200 || ms.claims(t, bound).Cnf == nil {
		t.Fatalf("first exchange: got %d %v, want a bound token", status, body)
	}
	tests := []struct {
		name   string
		hc     *http.Client
		base   string
		status int
	}{
		{"over its certificate's connection", ms.client(t, billing), ms.mtlsURL, 200},
		{"over another certificate's connection", ms.client(t, orders), ms.mtlsURL, 400},
		{"without a certificate", ms.client(t, nil), ms.mtlsURL, 400},
		{"over the plain listener", http.DefaultClient, ms.issuer, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := exchange(tt.hc, tt.base, bound)
			if status != tt.status || status != 200 && body["error"] != oauth.ErrInvalidRequest {
				t.Errorf("got %d %v, want %d", status, body, tt.status)
			}
		})
	}
}
