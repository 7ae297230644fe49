package ssf_test

import (
	"fmt"
	"net/url"
	"os"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/accounts"
	"github.com/gatehouse-dev/gatehouse/internal/keyring"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/postgres"
	"github.com/gatehouse-dev/gatehouse/internal/store/storetest"
	"github.com/gatehouse-dev/gatehouse/resource"
	"github.com/gatehouse-dev/gatehouse/ssf"
)

// filled returns a denylist with n revoked jtis, n/10 sessions and n/100
// subjects.
func filled(n int) *ssf.Denylist {
	var d ssf.Denylist
	drop := time.Now().Add(time.Hour)
	for i := range n {
		d.RevokeToken(fmt.Sprintf("jti-%08d-0123456789abcdef", i), drop)
		if i%10 == 0 {
			d.RevokeSession(fmt.Sprintf("sid-%08d", i), drop)
		}
		if i%100 == 0 {
			d.RevokeSubject(fmt.Sprintf("user-%08d", i), time.Now(), drop)
		}
	}
	return &d
}

// BenchmarkDenylist is the cost the denylist adds to each request: a live
// token checked against an empty list (the baseline) and a full one.
func BenchmarkDenylist(b *testing.B) {
	p := &resource.Principal{Subject: "user-live", ClientID: "web", SessionID: "sid-live",
		TokenID: "jti-live-0123456789abcdef", IssuedAt: time.Now()}
	for _, n := range []int{0, 100_000} {
		d := filled(n)
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if d.Revoked(p) {
					b.Fatal("live token revoked")
				}
			}
		})
	}
}

// BenchmarkDenylistMemory reports the heap held by 100,000 revoked jtis
// (plus 10,000 sessions and 1,000 subjects).
func BenchmarkDenylistMemory(b *testing.B) {
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		d := filled(100_000)
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "MiB/100k")
		runtime.KeepAlive(d)
	}
}

// BenchmarkPropagation is the propagation harness: 200 revocations, one at
// a time, each of a live access token through the revocation endpoint,
// with 10 receivers following one authorization server on loopback —
// long-polling it, or taking its pushes. It reports the p50 and p99 of the
// time from the start of the revoking request to the moment each
// receiver's denylist refuses the token. Run it with -benchtime=1x.
func BenchmarkPropagation(b *testing.B) {
	for _, delivery := range []string{"poll", "push"} {
		b.Run(delivery, func(b *testing.B) { benchmarkPropagation(b, delivery) })
	}
}

func benchmarkPropagation(b *testing.B, delivery string) {
	const revocations, receivers = 200, 10
	for b.Loop() {
		e := newEnv(b, openSQLite(b), keyring.Generate())
		secret := e.client(accounts.ClientSpec{ID: "svc", Grants: []string{oauth.GrantClientCredentials}, Audience: []string{"api"}})
		var mu sync.Mutex
		applied := make([]chan time.Time, receivers)
		for i := range receivers {
			ch := make(chan time.Time, revocations)
			applied[i] = ch
			onEvent := func(string, string) { ch <- time.Now() }
			if delivery == "push" {
				e.pushReceiver(fmt.Sprintf("rcv-%d", i), func(c *ssf.Config) { c.OnEvent = onEvent })
			} else {
				e.receiver(fmt.Sprintf("rcv-%d", i), e.issuer, onEvent)
			}
		}
		time.Sleep(500 * time.Millisecond) // every receiver is waiting
		var lat []time.Duration
		for range revocations {
			_, tok := e.form("/oauth2/token", "svc", secret, url.Values{"grant_type": {"client_credentials"}})
			start := time.Now()
			e.form("/oauth2/revoke", "svc", secret, url.Values{"token": {tok["access_token"].(string)}})
			for _, ch := range applied {
				select {
				case at := <-ch:
					mu.Lock()
					lat = append(lat, at.Sub(start))
					mu.Unlock()
				case <-time.After(30 * time.Second):
					b.Fatal("a receiver missed a revocation")
				}
			}
		}
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
	}
}

// BenchmarkPostgresReplicaWake is the replica wake-up latency on
// PostgreSQL: two authorization servers on one database, 5 receivers
// following server B, 50 revocations made one at a time through server A;
// it reports the p50 and p99 from the start of the revoking request at A to
// each receiver's applying the event, which needs A's NOTIFY to wake B's
// waiting long polls. Needs GATEHOUSE_TEST_POSTGRES; run with
// -benchtime=1x.
func BenchmarkPostgresReplicaWake(b *testing.B) {
	dsn := os.Getenv("GATEHOUSE_TEST_POSTGRES")
	if dsn == "" {
		b.Skip("GATEHOUSE_TEST_POSTGRES not set")
	}
	const revocations, receivers = 50, 5
	for b.Loop() {
		dsn := storetest.PostgresSchema(b, dsn)
		kr := keyring.Generate()
		a, bb := newEnv(b, openPostgresStore(b, dsn), kr), newEnv(b, openPostgresStore(b, dsn), kr)
		secret := a.client(accounts.ClientSpec{ID: "svc", Grants: []string{oauth.GrantClientCredentials}, Audience: []string{"api"}})
		applied := make([]chan time.Time, receivers)
		for i := range receivers {
			ch := make(chan time.Time, revocations)
			applied[i] = ch
			bb.receiver(fmt.Sprintf("rcv-%d", i), bb.issuer, func(string, string) { ch <- time.Now() })
		}
		time.Sleep(500 * time.Millisecond) // every receiver is waiting at B
		var lat []time.Duration
		for range revocations {
			_, tok := a.form("/oauth2/token", "svc", secret, url.Values{"grant_type": {"client_credentials"}})
			start := time.Now()
			a.form("/oauth2/revoke", "svc", secret, url.Values{"token": {tok["access_token"].(string)}})
			for _, ch := range applied {
				select {
				case at := <-ch:
					lat = append(lat, at.Sub(start))
				case <-time.After(30 * time.Second):
					b.Fatal("a receiver at B missed a revocation made at A")
				}
			}
		}
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
	}
}

func openPostgresStore(tb testing.TB, dsn string) store.Store {
	st, err := postgres.Open(tb.Context(), dsn)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return st
}
