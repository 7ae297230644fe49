package pki_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"

	"github.com/gatehouse-dev/gatehouse/pki"
	"github.com/gatehouse-dev/gatehouse/pki/pkitest"
)

// loadLoop sends requests to url from workers that reuse connections and
// from workers that open a new connection (a new handshake) per request,
// until stop is closed or each worker has sent maxPerWorker requests.
type loadLoop struct {
	ok, failed atomic.Int64
	firstErr   atomic.Value
	wg         sync.WaitGroup
}

func startLoad(url string, clients []*http.Client, maxPerWorker int, stop <-chan struct{}) *loadLoop {
	l := &loadLoop{}
	for _, c := range clients {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for range maxPerWorker {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := get(c, url); err != nil {
					l.failed.Add(1)
					l.firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				l.ok.Add(1)
			}
		}()
	}
	return l
}

func (l *loadLoop) wait(t *testing.T) {
	t.Helper()
	l.wg.Wait()
	t.Logf("load: %d requests succeeded, %d failed", l.ok.Load(), l.failed.Load())
	if n := l.failed.Load(); n != 0 {
		t.Fatalf("got %d failed requests (first: %v), want 0", n, l.firstErr.Load())
	}
	if l.ok.Load() == 0 {
		t.Fatalf("got no successful requests")
	}
}

// mtlsClients returns two clients over src that reuse connections and two
// that handshake for every request.
func mtlsClients(t *testing.T, src *pki.RotatingSource, authorize pki.Authorizer) []*http.Client {
	var cs []*http.Client
	for i := range 4 {
		cs = append(cs, client(t, pki.ClientConfig(src, src, authorize), i%2 == 0))
	}
	return cs
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, deadline time.Duration, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out after %v waiting for %s", deadline, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func leafOf(t *testing.T, s *pki.RotatingSource) *x509.Certificate {
	svid, err := s.GetX509SVID()
	if err != nil {
		t.Fatal(err)
	}
	return svid.Certificates[0]
}

func TestCertificateRotationUnderLoad(t *testing.T) {
	t.Parallel()
	ca := pkitest.NewCA(t, pkitest.WithLeafTTL(3*time.Second)) // renewed every 2s or so
	orders, gateway := ca.RotatingSource("orders"), ca.RotatingSource("gateway")
	url := serve(t, pki.ServerConfig(orders, orders, pki.AuthorizeID(ca.ID("gateway"))), &whoami{})

	first := map[string]*x509.Certificate{"orders": leafOf(t, orders), "gateway": leafOf(t, gateway)}
	stop := make(chan struct{})
	load := startLoad(url, mtlsClients(t, gateway, pki.AuthorizeID(ca.ID("orders"))), 5000, stop)
	// Two renewals on each side: the second certificate of each outlives
	// the first, so the load crosses expiries too.
	renewals := map[string]int{}
	seen := map[string]*x509.Certificate{"orders": first["orders"], "gateway": first["gateway"]}
	waitFor(t, "two renewals on each side", 15*time.Second, func() bool {
		for name, s := range map[string]*pki.RotatingSource{"orders": orders, "gateway": gateway} {
			if leaf := leafOf(t, s); leaf.SerialNumber.Cmp(seen[name].SerialNumber) != 0 {
				seen[name] = leaf
				renewals[name]++
			}
		}
		return renewals["orders"] >= 2 && renewals["gateway"] >= 2
	})
	time.Sleep(200 * time.Millisecond) // some load on the newest certificates
	close(stop)
	load.wait(t)
	for name, leaf := range first {
		if time.Now().Before(leaf.NotAfter) {
			t.Errorf("%s: the first certificate has not expired yet (NotAfter %v): the test ended too soon", name, leaf.NotAfter)
		}
	}
}

func TestCARotationWithOverlapUnderLoad(t *testing.T) {
	t.Parallel()
	const ttl = 3 * time.Second
	ca := pkitest.NewCA(t, pkitest.WithLeafTTL(ttl))
	refresh := pki.WithBundleRefresh(nil, 100*time.Millisecond)
	orders, gateway := ca.RotatingSource("orders", refresh), ca.RotatingSource("gateway", refresh)
	url := serve(t, pki.ServerConfig(orders, orders, pki.AuthorizeID(ca.ID("gateway"))), &whoami{})
	oldRoot := ca.Bundle().X509Authorities()[0]

	stop := make(chan struct{})
	load := startLoad(url, mtlsClients(t, gateway, pki.AuthorizeID(ca.ID("orders"))), 8000, stop)
	time.Sleep(300 * time.Millisecond)
	activateAt := time.Now().Add(time.Second) // > 100ms bundle refresh
	newRoot := ca.Rotate(activateAt)

	only := func(s *pki.RotatingSource, root *x509.Certificate) bool {
		b, err := s.GetX509BundleForTrustDomain(ca.TrustDomain)
		if err != nil {
			return false
		}
		roots := b.X509Authorities()
		return len(roots) == 1 && roots[0].Equal(root) &&
			bytes.Equal(leafOf(t, s).AuthorityKeyId, root.SubjectKeyId)
	}
	waitFor(t, "both sides to trust both roots", 2*time.Second, func() bool {
		for _, s := range []*pki.RotatingSource{orders, gateway} {
			if b, _ := s.GetX509BundleForTrustDomain(ca.TrustDomain); len(b.X509Authorities()) != 2 {
				return false
			}
		}
		return true
	})
	// The old root leaves the bundle LeafTTL after the new one signs.
	waitFor(t, "certificates from the new root and bundles without the old one", activateAt.Add(ttl).Sub(time.Now())+10*time.Second,
		func() bool { return only(orders, newRoot) && only(gateway, newRoot) })
	time.Sleep(200 * time.Millisecond)
	close(stop)
	load.wait(t)
	if oldRoot.Equal(newRoot) {
		t.Fatalf("the rotation did not change the root")
	}
}

func TestRotatingSourceKeepsServingWhileRenewalFails(t *testing.T) {
	t.Parallel()
	ca := pkitest.NewCA(t, pkitest.WithLeafTTL(3*time.Second))
	var failing atomic.Bool
	var calls atomic.Int64
	iss := pki.IssuerFunc(func(ctx context.Context, csr []byte) ([]*x509.Certificate, *x509bundle.Bundle, error) {
		calls.Add(1)
		if failing.Load() {
			return nil, nil, fmt.Errorf("issuer down")
		}
		return ca.Issuer("orders").Issue(ctx, csr)
	})
	logger, logs := newLogger()
	s, err := pki.NewRotatingSource(context.Background(), iss, pki.WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	first := leafOf(t, s)
	failing.Store(true)
	waitFor(t, "failed renewal attempts", 5*time.Second, func() bool { return calls.Load() >= 3 })
	if got := leafOf(t, s); !got.Equal(first) {
		t.Fatalf("the certificate changed while the issuer failed")
	}
	failing.Store(false)
	waitFor(t, "a renewal once the issuer is back", 5*time.Second, func() bool { return !leafOf(t, s).Equal(first) })
	if !containsAll(fmt.Sprint(logs.lines()), []string{"certificate renewal failed", "issuer down", "certificate renewed"}) {
		t.Fatalf("got log %q, want the failures and the renewal", logs.lines())
	}
}
