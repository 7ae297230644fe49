// Package grpcauth protects gRPC services with Gatehouse access tokens, the
// way package resource protects net/http ones: server interceptors read the
// "authorization" metadata (RFC 6750 bearer tokens carried as gRPC
// metadata), verify the token, put the *resource.Principal in the context
// and apply a per-method Authorizer; PerRPCCredentials puts a token on a
// client's calls from an outbound.TokenSource (relay, exchange or the
// service's own client credentials).
//
// A certificate-bound token (RFC 8705 §3) is accepted only on a TLS
// connection whose client certificate it is bound to.
//
// Missing or invalid tokens fail with codes.Unauthenticated, denials with
// codes.PermissionDenied, an unverifiable token (issuer unreachable, no
// cached keys) with codes.Unavailable.
package grpcauth

import (
	"context"
	"crypto/x509"
	"errors"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/gatehouse-dev/gatehouse/outbound"
	"github.com/gatehouse-dev/gatehouse/resource"
)

// Config configures the server interceptors. Verifier is required.
type Config struct {
	// Verifier checks the bearer token of every call.
	Verifier resource.TokenVerifier
	// Methods maps full method names ("/pkg.Service/Method") to the
	// authorizer that decides them.
	Methods map[string]resource.Authorizer
	// Default decides methods not in Methods; if nil, every authenticated
	// caller is allowed.
	Default resource.Authorizer
	// Public lists full method names that need no token (health checks).
	Public []string
}

// UnaryServerInterceptor returns the interceptor for unary calls.
func UnaryServerInterceptor(cfg Config) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, err := cfg.authorize(ctx, info.FullMethod)
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// StreamServerInterceptor returns the interceptor for streaming calls.
func StreamServerInterceptor(cfg Config) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, err := cfg.authorize(ss.Context(), info.FullMethod)
		if err != nil {
			return err
		}
		return handler(srv, &stream{ServerStream: ss, ctx: ctx})
	}
}

// stream carries the context with the principal to the handler.
type stream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *stream) Context() context.Context { return s.ctx }

func (cfg Config) authorize(ctx context.Context, method string) (context.Context, error) {
	for _, m := range cfg.Public {
		if m == method {
			return ctx, nil
		}
	}
	raw, ok := bearer(ctx)
	if !ok {
		return nil, status.Error(codes.Unauthenticated, "bearer token required")
	}
	p, err := cfg.Verifier.Verify(resource.WithPeerCertificate(ctx, peerCertificate(ctx)), raw)
	switch {
	case errors.Is(err, resource.ErrKeysUnavailable):
		return nil, status.Error(codes.Unavailable, "cannot verify tokens now")
	case err != nil:
		return nil, status.Error(codes.Unauthenticated, "the access token is invalid or expired")
	}
	ctx = resource.NewContext(ctx, p)
	a := cfg.Methods[method]
	if a == nil {
		a = cfg.Default
	}
	if a != nil {
		if err := a(ctx, p); err != nil {
			return nil, status.Error(codes.PermissionDenied, "access denied")
		}
	}
	return ctx, nil
}

// peerCertificate returns the client certificate of the call's TLS
// connection, or nil, against which a certificate-bound token is checked
// (RFC 8705 §3).
func peerCertificate(ctx context.Context) *x509.Certificate {
	pr, ok := peer.FromContext(ctx)
	if !ok {
		return nil
	}
	info, ok := pr.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.PeerCertificates) == 0 {
		return nil
	}
	return info.State.PeerCertificates[0]
}

// bearer reads "authorization: Bearer <token>" from the incoming metadata.
func bearer(ctx context.Context) (string, bool) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) != 1 {
		return "", false
	}
	scheme, token, ok := strings.Cut(vals[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", false
	}
	return token, true
}

// PerRPCCredentials puts "authorization: Bearer <token>" on each call, with
// the token from Source for the call's context. Use it with
// grpc.WithPerRPCCredentials or grpc.PerRPCCredentials.
type PerRPCCredentials struct {
	Source outbound.TokenSource
	// AllowInsecure lets tokens travel over a connection without transport
	// security; only for tests on loopback. Tokens need TLS (mTLS inside).
	AllowInsecure bool
}

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (c PerRPCCredentials) GetRequestMetadata(ctx context.Context, _ ...string) (map[string]string, error) {
	tok, err := c.Source.Token(ctx)
	if err != nil {
		return nil, status.Error(codes.Unauthenticated, err.Error())
	}
	return map[string]string{"authorization": "Bearer " + tok}, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials.
func (c PerRPCCredentials) RequireTransportSecurity() bool { return !c.AllowInsecure }
