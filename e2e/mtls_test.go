package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/gatehouse-dev/gatehouse/internal/adminapi"
	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/devstack"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/outbound"
	"github.com/gatehouse-dev/gatehouse/pki"
	"github.com/gatehouse-dev/gatehouse/resource"
)

// inventoryAudience is the audience of the test's own resource server.
const inventoryAudience = "inventory"

// controlSecret is the secret of a client like billing whose tokens are
// not bound: what the gateway does with them shows that it refuses
// billing's for the binding alone.
const controlSecret = "control-secret-0123456789"

// discoveryDoc is what the mTLS test reads from discovery.
type discoveryDoc struct {
	Issue   string            `json:"gatehouse_pki_issue_endpoint"`
	Bundle  string            `json:"gatehouse_pki_bundle_endpoint"`
	Bound   bool              `json:"tls_client_certificate_bound_access_tokens"`
	Aliases map[string]string `json:"mtls_endpoint_aliases"`
}

// joinedService is a service that joined the mesh with a join token: its
// certificate source renews over mutual TLS with the certificate itself.
func joinedService(t *testing.T, h *harness, d discoveryDoc, name string) *pki.RotatingSource {
	t.Helper()
	admin := &adminapi.Remote{URL: h.AdminURL, Token: h.AdminToken}
	jt, err := admin.CreateJoinToken(t.Context(), adminapi.NewJoinToken{Name: name})
	if err != nil {
		t.Fatalf("join token for %s: %v", name, err)
	}
	src, err := pki.NewRotatingSource(t.Context(), &pki.HTTPIssuer{
		IssueURL: d.Issue, BundleURL: d.Bundle, JoinToken: jt.Token,
		RenewURL: d.Aliases["gatehouse_pki_issue_endpoint"], RenewServer: pki.AuthorizeID(h.serviceID(devstack.AuthServerName)),
	})
	if err != nil {
		t.Fatalf("%s joins: %v", name, err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

func (h *harness) serviceID(name string) spiffeid.ID {
	return pki.MustServiceID(h.CA.TrustDomain(), name)
}

// TestCertificateBoundToken runs RFC 8705 end to end on the dev stack with
// its mutual-TLS listener: two services join with one-time join tokens;
// billing (tls_client_auth, certificate-bound) gets a token bound to its
// certificate with outbound.ClientCredentials and calls an inventory
// service over mutual TLS; the same token replayed from another service's
// connection, over a plain connection, or at the gateway is refused.
func TestCertificateBoundToken(t *testing.T) {
	t.Parallel()
	h := start(t, func(o *devstack.Options) {
		o.MTLSAddr = "127.0.0.1:0"
		cc := []string{oauth.GrantClientCredentials}
		aud := []string{inventoryAudience, devstack.Audience}
		o.Seed.Clients = append(o.Seed.Clients,
			config.SeedClient{ID: "billing", AuthMethod: store.AuthTLSClientAuth, Grants: cc, Audience: aud, CertificateBound: true},
			config.SeedClient{ID: "intruder", AuthMethod: store.AuthTLSClientAuth, Grants: cc, Audience: aud},
			config.SeedClient{ID: "control", Secret: controlSecret, Grants: cc, Audience: aud})
	})
	var d discoveryDoc
	resp, err := h.client.Get(h.IssuerURL + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&d)
	resp.Body.Close()
	if !d.Bound || d.Aliases["token_endpoint"] != h.MTLSURL+"/oauth2/token" {
		t.Fatalf("discovery: got bound %v, aliases %v, want the mutual-TLS token endpoint %s", d.Bound, d.Aliases, h.MTLSURL)
	}
	billing, intruder := joinedService(t, h, d, "billing"), joinedService(t, h, d, "intruder")
	inventory := h.CA.Issuer(inventoryAudience)
	invSrc, err := pki.NewRotatingSource(t.Context(), inventory)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { invSrc.Close() })

	// The inventory service: the resource library behind mutual TLS, and,
	// as a service reachable without TLS would be, on plain HTTP too.
	verifier, err := resource.NewVerifier(resource.Config{Issuer: h.IssuerURL, Audience: []string{inventoryAudience}})
	if err != nil {
		t.Fatal(err)
	}
	api := resource.Middleware(verifier)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, resource.FromContext(r.Context()).ClientID)
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: api}
	go srv.Serve(tls.NewListener(ln, pki.ServerConfig(invSrc, invSrc, pki.AuthorizeMemberOf(h.CA.TrustDomain()))))
	t.Cleanup(func() { srv.Close() })
	inventoryURL := "https://" + ln.Addr().String() + "/stock"
	plain := httptest.NewServer(api)
	t.Cleanup(plain.Close)

	// billing: a bound token, with no secret anywhere.
	tokens := &outbound.ClientCredentials{
		TokenURL: d.Aliases["token_endpoint"], ClientID: "billing", AuthMethod: oauth.AuthTLSClientAuth, Certificate: billing,
		HTTPClient: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: pki.ClientConfig(billing, billing, pki.AuthorizeID(h.serviceID(devstack.AuthServerName)))}},
	}
	billingClient := &http.Client{Timeout: 10 * time.Second, Transport: &outbound.Transport{Source: tokens,
		Base: &outbound.MTLSTransport{Certificate: billing, Bundle: billing, Authorize: pki.AuthorizeID(h.serviceID(inventoryAudience))}}}
	stolen, err := tokens.Token(t.Context())
	if err != nil {
		t.Fatalf("billing's bound token: %v", err)
	}
	control := &oauth.TokenClient{TokenURL: h.TokenURL, ClientID: "control", ClientSecret: controlSecret}
	tr, err := control.Token(t.Context(), url.Values{"grant_type": {oauth.GrantClientCredentials}})
	if err != nil {
		t.Fatal(err)
	}
	unbound := tr.AccessToken
	intruderClient := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: pki.ClientConfig(intruder, intruder, pki.AuthorizeID(h.serviceID(inventoryAudience)))}}

	tests := []struct {
		name   string
		do     func() (*http.Response, error)
		status int
		caller string // the body of a 200 from inventory: the caller's client ID
	}{
		{"billing, from its own connection", func() (*http.Response, error) { return billingClient.Get(inventoryURL) }, 200, "billing"},
		{"replayed from another service's certificate", func() (*http.Response, error) {
			return get(t.Context(), intruderClient, inventoryURL, stolen)
		}, 401, ""},
		{"replayed without a certificate", func() (*http.Response, error) {
			return get(t.Context(), plain.Client(), plain.URL+"/stock", stolen)
		}, 401, ""},
		{"replayed at the gateway", func() (*http.Response, error) {
			return get(t.Context(), h.client, h.GatewayURL+"/api/orders", stolen)
		}, 401, ""},
		{"an unbound token like it, at the gateway", func() (*http.Response, error) {
			return get(t.Context(), h.client, h.GatewayURL+"/api/orders", unbound)
		}, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := tt.do()
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status {
				t.Fatalf("got HTTP %d %s, want %d", resp.StatusCode, body, tt.status)
			}
			switch {
			case tt.caller != "" && string(body) != tt.caller:
				t.Errorf("got caller %q, want %q", body, tt.caller)
			case tt.status == 401 && !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`):
				t.Errorf("got WWW-Authenticate %q, want an invalid_token challenge", resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
}

func get(ctx context.Context, hc *http.Client, url, token string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	return hc.Do(req)
}
