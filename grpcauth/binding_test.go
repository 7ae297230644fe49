package grpcauth

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/gatehouse-dev/gatehouse/internal/jose"
	"github.com/gatehouse-dev/gatehouse/pki"
	"github.com/gatehouse-dev/gatehouse/pki/pkitest"
	"github.com/gatehouse-dev/gatehouse/resource"
)

// TestCertificateBoundTokens: over mutual TLS, a token bound to the
// caller's certificate (RFC 8705 §3) passes; the same token from a
// connection with another certificate, or without TLS, does not.
func TestCertificateBoundTokens(t *testing.T) {
	ca := pkitest.NewCA(t)
	holder, other := ca.SVID("billing"), ca.SVID("billing")
	key, _ := jose.GenerateKey(jose.ES256)
	jwks, _ := jose.NewKeySet(key.Public()).MarshalJSON()
	v, err := resource.NewStaticVerifier(resource.Config{Issuer: issuer, Audience: []string{audience}}, jwks)
	if err != nil {
		t.Fatal(err)
	}
	mint := func(bound *x509svid.SVID) string {
		now := time.Now()
		c := jose.Claims{Issuer: issuer, Subject: "billing", Audience: jose.Audience{audience},
			IssuedAt: jose.NewNumericDate(now), Expiry: jose.NewNumericDate(now.Add(time.Minute))}
		if bound != nil {
			c.Cnf = jose.BindCertificate(bound.Certificates[0].Raw)
		}
		tok, _ := jose.Sign(key, jose.TypeAccessToken, c)
		return tok
	}
	start := func(creds credentials.TransportCredentials) string {
		cfg := Config{Verifier: v}
		srv := grpc.NewServer(grpc.Creds(creds), grpc.UnaryInterceptor(UnaryServerInterceptor(cfg)))
		healthpb.RegisterHealthServer(srv, health.NewServer())
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go srv.Serve(ln)
		t.Cleanup(srv.Stop)
		return ln.Addr().String()
	}
	mtlsAddr := start(credentials.NewTLS(pki.ServerConfig(ca.Source("orders"), ca, pki.AuthorizeMemberOf(ca.TrustDomain))))
	plainAddr := start(insecure.NewCredentials())
	call := func(addr string, client *x509svid.SVID, token string) error {
		creds := insecure.NewCredentials()
		if client != nil {
			creds = credentials.NewTLS(pki.ClientConfig(pki.NewStaticSource(client, ca.Bundle()), ca, pki.AuthorizeID(ca.ID("orders"))))
		}
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds),
			grpc.WithPerRPCCredentials(PerRPCCredentials{Source: staticToken(token), AllowInsecure: client == nil}))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_, err = healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{})
		return err
	}
	bound := mint(holder)
	tests := []struct {
		name   string
		addr   string
		client *x509svid.SVID
		token  string
		want   codes.Code
	}{
		{"bound token from its holder", mtlsAddr, holder, bound, codes.OK},
		{"bound token from another certificate", mtlsAddr, other, bound, codes.Unauthenticated},
		{"bound token without TLS", plainAddr, nil, bound, codes.Unauthenticated},
		{"unbound token from any certificate", mtlsAddr, other, mint(nil), codes.OK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := status.Code(call(tt.addr, tt.client, tt.token)); got != tt.want {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}
