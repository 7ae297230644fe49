package grpcauth

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/gatehouse-dev/gatehouse/internal/jose"
	"github.com/gatehouse-dev/gatehouse/resource"
)

type staticToken string

func (s staticToken) Token(context.Context) (string, error) { return string(s), nil }

const issuer, audience = "https://auth.test", "inventory"

// healthServer wraps the real health service to record the principal.
type healthServer struct {
	*health.Server
	seen chan *resource.Principal
}

func (h *healthServer) Check(ctx context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	h.seen <- resource.FromContext(ctx)
	return h.Server.Check(ctx, req)
}

func TestInterceptorsWithARealServer(t *testing.T) {
	key, _ := jose.GenerateKey(jose.ES256)
	jwks, _ := jose.NewKeySet(key.Public()).MarshalJSON()
	v, err := resource.NewStaticVerifier(resource.Config{Issuer: issuer, Audience: []string{audience}}, jwks)
	if err != nil {
		t.Fatal(err)
	}
	mint := func(aud string, roles ...string) string {
		now := time.Now()
		tok, _ := jose.Sign(key, jose.TypeAccessToken, jose.Claims{Issuer: issuer, Subject: "alice", Audience: jose.Audience{aud},
			IssuedAt: jose.NewNumericDate(now), Expiry: jose.NewNumericDate(now.Add(time.Minute)), Roles: roles})
		return tok
	}
	cfg := Config{Verifier: v, Methods: map[string]resource.Authorizer{
		healthpb.Health_Watch_FullMethodName: resource.RequireRole("admin"),
	}}
	srv := grpc.NewServer(grpc.UnaryInterceptor(UnaryServerInterceptor(cfg)), grpc.StreamInterceptor(StreamServerInterceptor(cfg)))
	hs := &healthServer{Server: health.NewServer(), seen: make(chan *resource.Principal, 10)}
	healthpb.RegisterHealthServer(srv, hs)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)

	call := func(token string) error {
		opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
		if token != "" {
			opts = append(opts, grpc.WithPerRPCCredentials(PerRPCCredentials{Source: staticToken(token), AllowInsecure: true}))
		}
		conn, err := grpc.NewClient(ln.Addr().String(), opts...)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_, err = healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{})
		return err
	}
	watch := func(token string) error {
		conn, _ := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithPerRPCCredentials(PerRPCCredentials{Source: staticToken(token), AllowInsecure: true}))
		defer conn.Close()
		st, err := healthpb.NewHealthClient(conn).Watch(context.Background(), &healthpb.HealthCheckRequest{})
		if err != nil {
			return err
		}
		_, err = st.Recv()
		return err
	}
	tests := []struct {
		name string
		run  func() error
		want codes.Code
	}{
		{"no token", func() error { return call("") }, codes.Unauthenticated},
		{"garbage token", func() error { return call("not-a-jwt") }, codes.Unauthenticated},
		{"wrong audience", func() error { return call(mint("billing")) }, codes.Unauthenticated},
		{"valid token", func() error { return call(mint(audience)) }, codes.OK},
		{"stream without the role", func() error { return watch(mint(audience, "consumer")) }, codes.PermissionDenied},
		{"stream with the role", func() error { return watch(mint(audience, "admin")) }, codes.OK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := status.Code(tt.run()); got != tt.want {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
	select {
	case p := <-hs.seen:
		if p == nil || p.Subject != "alice" {
			t.Fatalf("got principal %+v in the handler, want alice", p)
		}
	default:
		t.Fatalf("the handler never ran")
	}
}

func TestPerRPCCredentialsNeedTransportSecurity(t *testing.T) {
	if !(PerRPCCredentials{Source: staticToken("x")}).RequireTransportSecurity() {
		t.Fatalf("got false, want tokens to require transport security by default")
	}
}
