package resource_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/gatehouse-dev/gatehouse/internal/jose"
	"github.com/gatehouse-dev/gatehouse/pki"
	"github.com/gatehouse-dev/gatehouse/pki/pkitest"
	"github.com/gatehouse-dev/gatehouse/resource"
)

const bindingIssuer, bindingAudience = "https://auth.test", "orders"

// boundTokens signs access tokens for the binding tests, bound to a
// certificate or not.
type boundTokens struct {
	key  *jose.PrivateKey
	jwks []byte
}

func newBoundTokens(t *testing.T) *boundTokens {
	t.Helper()
	key, err := jose.GenerateKey(jose.ES256)
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := jose.NewKeySet(key.Public()).MarshalJSON()
	return &boundTokens{key: key, jwks: jwks}
}

// mint returns a token bound to svid's certificate, or unbound if svid is nil.
func (b *boundTokens) mint(t *testing.T, svid *x509svid.SVID) string {
	t.Helper()
	now := time.Now()
	c := jose.Claims{Issuer: bindingIssuer, Subject: "billing", ClientID: "billing", Audience: jose.Audience{bindingAudience},
		IssuedAt: jose.NewNumericDate(now), Expiry: jose.NewNumericDate(now.Add(time.Minute))}
	if svid != nil {
		c.Cnf = jose.BindCertificate(svid.Certificates[0].Raw)
	}
	raw, err := jose.Sign(b.key, jose.TypeAccessToken, c)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func (b *boundTokens) verifier(t *testing.T) *resource.Verifier {
	t.Helper()
	v, err := resource.NewStaticVerifier(resource.Config{Issuer: bindingIssuer, Audience: []string{bindingAudience}}, b.jwks)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestMiddlewareCertificateBinding serves Middleware over mutual TLS (and
// plain HTTP) and presents bound and unbound tokens from connections with
// and without the certificate they are bound to (RFC 8705 §3).
func TestMiddlewareCertificateBinding(t *testing.T) {
	ca := pkitest.NewCA(t)
	holder, other := ca.SVID("billing"), ca.SVID("billing") // the same service, renewed: another certificate
	tokens := newBoundTokens(t)
	h := resource.Middleware(tokens.verifier(t))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(tls.NewListener(ln, pki.ServerConfig(ca.Source("orders"), ca, pki.AuthorizeMemberOf(ca.TrustDomain))))
	t.Cleanup(func() { srv.Close() })
	plain := httptest.NewServer(h)
	t.Cleanup(plain.Close)
	over := func(svid *x509svid.SVID) *http.Client {
		cfg := pki.ClientConfig(pki.NewStaticSource(svid, ca.Bundle()), ca, pki.AuthorizeID(ca.ID("orders")))
		return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
	}
	mtlsURL := "https://" + ln.Addr().String()
	bound := tokens.mint(t, holder)
	tests := []struct {
		name   string
		hc     *http.Client
		url    string
		token  string
		status int
	}{
		{"unbound token over mutual TLS", over(other), mtlsURL, tokens.mint(t, nil), 204},
		{"unbound token over plain HTTP", plain.Client(), plain.URL, tokens.mint(t, nil), 204},
		{"bound token from its holder", over(holder), mtlsURL, bound, 204},
		{"bound token from another certificate", over(other), mtlsURL, bound, 401},
		{"bound token over plain HTTP", plain.Client(), plain.URL, bound, 401},
		{"bound token from its holder again (cached)", over(holder), mtlsURL, bound, 204},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, tt.url+"/orders", nil)
			req.Header.Set("Authorization", "Bearer "+tt.token)
			resp, err := tt.hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("got HTTP %d, want %d", resp.StatusCode, tt.status)
			}
			if tt.status != 401 {
				return
			}
			var body struct{ Error string }
			json.NewDecoder(resp.Body).Decode(&body)
			if ch := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(ch, "Bearer ") ||
				!strings.Contains(ch, `error="invalid_token"`) || body.Error != "invalid_token" {
				t.Errorf("got WWW-Authenticate %q, error %q, want a Bearer invalid_token challenge", ch, body.Error)
			}
		})
	}
}

// TestVerifyCertificateBinding: Verify alone refuses a bound token unless
// the context carries its certificate, so no caller can skip the check.
func TestVerifyCertificateBinding(t *testing.T) {
	ca := pkitest.NewCA(t)
	holder := ca.SVID("billing")
	tokens := newBoundTokens(t)
	v := tokens.verifier(t)
	bound := tokens.mint(t, holder)
	if _, err := v.Verify(context.Background(), bound); !errors.Is(err, resource.ErrCertificateMismatch) || !errors.Is(err, resource.ErrInvalidToken) {
		t.Fatalf("without a certificate: got %v, want ErrCertificateMismatch", err)
	}
	p, err := v.Verify(resource.WithPeerCertificate(context.Background(), holder.Certificates[0]), bound)
	if err != nil || p.CertificateThumbprint != jose.CertificateThumbprint(holder.Certificates[0].Raw) {
		t.Fatalf("with its certificate: got %+v, %v, want the principal with the thumbprint", p, err)
	}
}

// TestIntrospectorCertificateBinding: the cnf of an introspection answer
// (RFC 8705 §3.2) binds the token as a JWT's does.
func TestIntrospectorCertificateBinding(t *testing.T) {
	ca := pkitest.NewCA(t)
	holder, other := ca.SVID("billing"), ca.SVID("billing")
	as := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"active": true, "sub": "billing", "token_type": "Bearer",
			"exp": time.Now().Add(time.Minute).Unix(),
			"cnf": map[string]string{"x5t#S256": jose.CertificateThumbprint(holder.Certificates[0].Raw)}})
	}))
	t.Cleanup(as.Close)
	in, err := resource.NewIntrospector(resource.IntrospectionConfig{IntrospectionURL: as.URL, ClientID: "orders", ClientSecret: "s"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tt := range []struct {
		name    string
		ctx     context.Context
		wantErr error
	}{
		{"its certificate", resource.WithPeerCertificate(ctx, holder.Certificates[0]), nil},
		{"another certificate", resource.WithPeerCertificate(ctx, other.Certificates[0]), resource.ErrCertificateMismatch},
		{"no certificate", ctx, resource.ErrCertificateMismatch},
		{"its certificate, from the cache", resource.WithPeerCertificate(ctx, holder.Certificates[0]), nil},
	} {
		if _, err := in.Verify(tt.ctx, "opaque-token"); !errors.Is(err, tt.wantErr) {
			t.Errorf("%s: got %v, want %v", tt.name, err, tt.wantErr)
		}
	}
}
