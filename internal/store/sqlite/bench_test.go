package sqlite

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// The store's hot paths, as the authorization server uses them: the client
// lookup of every authenticated request, the opaque-token lookup of an
// introspection, the insert of every opaque token minted, and the rotation
// transaction of every refresh.

func openBench(b *testing.B) *Store {
	b.Helper()
	s, err := Open(b.Context(), filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	c := store.Client{ID: "bench", SecretHash: "h", Grants: []string{"client_credentials", "refresh_token"},
		Scopes: []string{"orders", "profile"}, Audience: []string{"api"}, CreatedAt: time.Now(), UpdatedAt: time.Now()}
	if err := s.CreateClient(b.Context(), c); err != nil {
		b.Fatal(err)
	}
	return s
}

func BenchmarkGetClient(b *testing.B) {
	s := openBench(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.GetClient(b.Context(), "bench"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetClientParallel(b *testing.B) {
	s := openBench(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.GetClient(b.Context(), "bench"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkGetAccessToken(b *testing.B) {
	s := openBench(b)
	now := time.Now()
	t := store.AccessToken{Hash: "h", ClientID: "bench", Subject: "u1", FamilyID: "f", Claims: []byte(`{"sub":"u1"}`),
		CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := s.CreateAccessToken(b.Context(), t); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.GetAccessToken(b.Context(), "h"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCreateAccessToken(b *testing.B) {
	s := openBench(b)
	now := time.Now()
	claims := []byte(`{"aud":["api"],"client_id":"bench","exp":1,"iat":1,"iss":"https://as.example","jti":"x","sub":"bench"}`)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		t := store.AccessToken{Hash: fmt.Sprint("h", i), ClientID: "bench", Subject: "bench", Claims: claims,
			CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		if err := s.CreateAccessToken(b.Context(), t); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRotateRefreshToken(b *testing.B) {
	s := openBench(b)
	now := time.Now()
	token := func(i int) store.RefreshToken {
		return store.RefreshToken{Hash: fmt.Sprint("r", i), FamilyID: "fam", ClientID: "bench", UserID: "u1",
			Scopes: []string{"orders"}, AuthTime: now, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	}
	if err := s.CreateRefreshToken(b.Context(), token(0)); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := s.RotateRefreshToken(b.Context(), fmt.Sprint("r", i), token(i+1), now, 0); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
