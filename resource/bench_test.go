package resource_test

import (
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/jose"
	"github.com/gatehouse-dev/gatehouse/pki/pkitest"
	"github.com/gatehouse-dev/gatehouse/resource"
)

// benchmarkVerify measures Verifier.Verify of one valid token. Cold runs
// have the cache off (CacheSize -1), so every iteration parses, checks and
// verifies the signature; compare them with BenchmarkRawES256Verify in
// internal/jose, the signature check alone.
func benchmarkVerify(b *testing.B, alg string, cacheSize int) {
	key := generateKey(b, alg)
	v := newStaticVerifier(b, key, func(c *resource.Config) { c.CacheSize = cacheSize })
	raw := mint(b, key, staticIssuer, time.Now(), nil)
	if _, err := v.Verify(b.Context(), raw); err != nil {
		b.Fatalf("Verify: %v", err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(b.Context(), raw); err != nil {
			b.Fatalf("Verify: %v", err)
		}
	}
}

func BenchmarkVerifyES256Cold(b *testing.B)   { benchmarkVerify(b, jose.ES256, -1) }
func BenchmarkVerifyES256Cached(b *testing.B) { benchmarkVerify(b, jose.ES256, 0) }
func BenchmarkVerifyRS256Cold(b *testing.B)   { benchmarkVerify(b, jose.RS256, -1) }
func BenchmarkVerifyEdDSACold(b *testing.B)   { benchmarkVerify(b, jose.EdDSA, -1) }

// BenchmarkVerifyCustomClaimsCold adds reading roles from a nested claim
// (Keycloak's realm_access.roles) to BenchmarkVerifyES256Cold.
func BenchmarkVerifyCustomClaimsCold(b *testing.B) {
	key := generateKey(b, jose.ES256)
	v := newStaticVerifier(b, key, func(c *resource.Config) {
		c.CacheSize, c.RolesClaim = -1, "realm_access.roles"
	})
	now := time.Now()
	raw := sign(b, key, keycloakClaims{
		Claims: jose.Claims{
			Issuer: staticIssuer, Subject: "alice", Audience: jose.Audience{testAudience},
			Expiry: jose.NewNumericDate(now.Add(time.Hour)), IssuedAt: jose.NewNumericDate(now),
		},
		RealmAccess: map[string]any{"roles": []string{"admin", "user"}},
	})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(b.Context(), raw); err != nil {
			b.Fatalf("Verify: %v", err)
		}
	}
}

// BenchmarkVerifyES256CachedParallel is BenchmarkVerifyES256Cached from all
// CPUs at once: the contention on the cache's lock.
func BenchmarkVerifyES256CachedParallel(b *testing.B) {
	key := generateKey(b, jose.ES256)
	v := newStaticVerifier(b, key, nil)
	raw := mint(b, key, staticIssuer, time.Now(), nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Verify(b.Context(), raw); err != nil {
				b.Errorf("Verify: %v", err)
				return
			}
		}
	})
}

// BenchmarkVerifyBoundCached is BenchmarkVerifyES256Cached for a
// certificate-bound token (RFC 8705) presented with its certificate: the
// binding check (a SHA-256 of the certificate and a comparison) on top of a
// cache hit, its baseline.
func BenchmarkVerifyBoundCached(b *testing.B) {
	key := generateKey(b, jose.ES256)
	v := newStaticVerifier(b, key, nil)
	cert := pkitest.NewCA(b).SVID("billing").Certificates[0]
	now := time.Now()
	raw := sign(b, key, jose.Claims{Issuer: staticIssuer, Subject: "billing", Audience: jose.Audience{testAudience},
		Expiry: jose.NewNumericDate(now.Add(time.Hour)), IssuedAt: jose.NewNumericDate(now),
		Cnf: jose.BindCertificate(cert.Raw)})
	ctx := resource.WithPeerCertificate(b.Context(), cert)
	if _, err := v.Verify(ctx, raw); err != nil {
		b.Fatalf("Verify: %v", err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, raw); err != nil {
			b.Fatalf("Verify: %v", err)
		}
	}
}
