package config

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/pki"
	"github.com/gatehouse-dev/gatehouse/pki/pkitest"
)

// TestGatewayFileMTLS: with an mtls block the gateway's routes reach their
// upstreams over mutual TLS with the gateway's certificate, and refuse an
// upstream that does not present the route's spiffe_id.
func TestGatewayFileMTLS(t *testing.T) {
	ca := pkitest.NewCA(t)
	dir := t.TempDir()
	certPEM, keyPEM, err := ca.SVID("gateway").Marshal()
	if err != nil {
		t.Fatal(err)
	}
	bundlePEM, err := ca.Bundle().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"cert.pem": certPEM, "key.pem": keyPEM, "bundle.pem": bundlePEM} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// orders admits only the gateway.
	orders := ca.Source("orders")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) }),
		TLSConfig: pki.ServerConfig(orders, orders, pki.AuthorizeID(ca.ID("gateway")))}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	upstream := "https://" + ln.Addr().String()

	file := func(routes string) string {
		return write(t, "gw.yaml", "issuer: http://127.0.0.1:9000\naudience: [api]\nmtls:\n  cert_file: "+filepath.Join(dir, "cert.pem")+
			"\n  key_file: "+filepath.Join(dir, "key.pem")+"\n  bundle_file: "+filepath.Join(dir, "bundle.pem")+"\nroutes:\n"+routes)
	}
	get := func(rt http.RoundTripper) (int, error) {
		resp, err := (&http.Client{Transport: rt}).Get(upstream + "/")
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	_, gc, err := LoadGateway(file("  - prefix: /api/orders\n    upstream: " + upstream + "\n    spiffe_id: " + ca.ID("orders").String() + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if code, err := get(gc.Routes[0].Transport); err != nil || code != http.StatusTeapot {
		t.Fatalf("gateway → orders over mTLS: got %d, %v, want the upstream's 418", code, err)
	}
	_, gc, err = LoadGateway(file("  - prefix: /api/orders\n    upstream: " + upstream + "\n    spiffe_id: " + ca.ID("billing").String() + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := get(gc.Routes[0].Transport); err == nil {
		t.Fatalf("got a response from an upstream with the wrong SPIFFE ID, want the handshake refused")
	}
	for routes, want := range map[string]string{
		"  - prefix: /a\n    upstream: " + upstream + "\n":                                 "needs spiffe_id",
		"  - prefix: /a\n    upstream: " + upstream + "\n    spiffe_id: not-a-spiffe-id\n": "spiffe_id",
	} {
		if _, _, err := LoadGateway(file(routes)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("routes %q: got %v, want an error saying %q", routes, err, want)
		}
	}
}
