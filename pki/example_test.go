package pki_test

import (
	"context"
	"log"
	"log/slog"
	"net/http"
	"os"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/gatehouse-dev/gatehouse/pki"
)

// A service serves mTLS with the files `gatehouse ca issue --name orders`
// wrote, and admits only the gateway.
func ExampleServerConfig() {
	src, err := pki.LoadSource("/etc/orders/cert.pem", "/etc/orders/key.pem", "/etc/orders/bundle.pem")
	if err != nil {
		log.Fatal(err)
	}
	gateway := spiffeid.RequireFromString("spiffe://prod.example.com/svc/gateway")
	srv := &http.Server{
		Addr:      ":8443",
		Handler:   http.NotFoundHandler(),
		TLSConfig: pki.ServerConfig(src, src, pki.AuthorizeID(gateway), pki.WithLogger(slog.Default())),
	}
	log.Fatal(srv.ListenAndServeTLS("", "")) // the certificate comes from TLSConfig
}

// A service gets its certificate from the authorization server with its own
// client_credentials token, renews it at two thirds of its lifetime, and
// calls consumers, expecting exactly consumers' SPIFFE ID.
func ExampleClientConfig() {
	ctx := context.Background()
	issuer := &pki.HTTPIssuer{
		IssueURL:  "https://auth.example.com/pki/v1/issue",  // gatehouse_pki_issue_endpoint
		BundleURL: "https://auth.example.com/pki/v1/bundle", // gatehouse_pki_bundle_endpoint
		Token: func(ctx context.Context) (string, error) {
			return os.Getenv("ORDERS_TOKEN"), nil // in practice, a client_credentials token source
		},
	}
	src, err := pki.NewRotatingSource(ctx, issuer, pki.WithLogger(slog.Default()))
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()
	consumers := spiffeid.RequireFromString("spiffe://prod.example.com/svc/consumers")
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig: pki.ClientConfig(src, src, pki.AuthorizeID(consumers)),
	}}
	resp, err := client.Get("https://consumers.internal:8443/consumers/me")
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
}
