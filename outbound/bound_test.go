package outbound_test

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/gatehouse-dev/gatehouse/internal/jose"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/outbound"
	"github.com/gatehouse-dev/gatehouse/pki"
	"github.com/gatehouse-dev/gatehouse/pki/pkitest"
)

// swappable is a certificate source whose certificate a test replaces, as a
// renewal does.
type swappable struct{ svid atomic.Pointer[x509svid.SVID] }

func (s *swappable) GetX509SVID() (*x509svid.SVID, error) { return s.svid.Load(), nil }

// TestClientCredentialsBound: with Certificate, the token request presents
// the certificate (tls_client_auth: no secret), and after a renewal the next
// Token call fetches a token over a new connection with the new certificate.
func TestClientCredentialsBound(t *testing.T) {
	ca := pkitest.NewCA(t)
	var calls atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		if r.Header.Get("Authorization") != "" || r.PostForm.Get("client_id") != "billing" || r.PostForm.Has("client_secret") {
			oauth.WriteError(w, &oauth.Error{Code: oauth.ErrInvalidClient, Description: "want tls_client_auth"})
			return
		}
		calls.Add(1)
		// The token names the certificate it is bound to.
		oauth.WriteJSON(w, http.StatusOK, oauth.TokenResponse{TokenType: "Bearer", ExpiresIn: 300,
			AccessToken: jose.CertificateThumbprint(r.TLS.PeerCertificates[0].Raw)})
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(tls.NewListener(ln, pki.ServerConfig(ca.Source("authserver"), ca, pki.AuthorizeMemberOf(ca.TrustDomain))))
	t.Cleanup(func() { srv.Close() })

	src := &swappable{}
	first, renewed := ca.SVID("billing"), ca.SVID("billing")
	src.svid.Store(first)
	cc := &outbound.ClientCredentials{
		TokenURL: "https://" + ln.Addr().String() + "/oauth2/token", ClientID: "billing", AuthMethod: "tls_client_auth",
		Certificate: src,
		HTTPClient: &http.Client{Transport: &http.Transport{
			TLSClientConfig: pki.ClientConfig(src, ca, pki.AuthorizeID(ca.ID("authserver")))}},
	}
	thumb := func(s *x509svid.SVID) string { return jose.CertificateThumbprint(s.Certificates[0].Raw) }
	steps := []struct {
		name      string
		renew     *x509svid.SVID
		want      string
		wantCalls int64
	}{
		{"first token", nil, thumb(first), 1},
		{"cached", nil, thumb(first), 1},
		{"after a renewal", renewed, thumb(renewed), 2},
		{"cached again", nil, thumb(renewed), 2},
	}
	for _, s := range steps {
		if s.renew != nil {
			src.svid.Store(s.renew)
		}
		got, err := cc.Token(context.Background())
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got != s.want || calls.Load() != s.wantCalls {
			t.Fatalf("%s: got a token bound to %s after %d requests, want %s after %d", s.name, got, calls.Load(), s.want, s.wantCalls)
		}
	}
}

// TestMTLSTransportRenewal: after a renewal, requests present the new
// certificate, although the connection opened with the old one is alive.
func TestMTLSTransportRenewal(t *testing.T) {
	ca := pkitest.NewCA(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(jose.CertificateThumbprint(r.TLS.PeerCertificates[0].Raw)))
	})}
	go srv.Serve(tls.NewListener(ln, pki.ServerConfig(ca.Source("orders"), ca, pki.AuthorizeMemberOf(ca.TrustDomain))))
	t.Cleanup(func() { srv.Close() })
	src := &swappable{}
	first, renewed := ca.SVID("billing"), ca.SVID("billing")
	src.svid.Store(first)
	hc := &http.Client{Transport: &outbound.MTLSTransport{Certificate: src, Bundle: ca, Authorize: pki.AuthorizeID(ca.ID("orders"))}}
	get := func() string {
		t.Helper()
		resp, err := hc.Get("https://" + ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	thumb := func(s *x509svid.SVID) string { return jose.CertificateThumbprint(s.Certificates[0].Raw) }
	for _, step := range []struct {
		name  string
		renew *x509svid.SVID
		want  string
	}{
		{"first", nil, thumb(first)},
		{"same connection", nil, thumb(first)},
		{"after a renewal", renewed, thumb(renewed)},
		{"after a renewal, again", nil, thumb(renewed)},
	} {
		if step.renew != nil {
			src.svid.Store(step.renew)
		}
		if got := get(); got != step.want {
			t.Fatalf("%s: the server saw certificate %s, want %s", step.name, got, step.want)
		}
	}
}
