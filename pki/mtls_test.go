package pki_test

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/pki"
	"github.com/gatehouse-dev/gatehouse/pki/pkitest"
)

func TestMTLSAdmitsAuthorizedPeer(t *testing.T) {
	ca := pkitest.NewCA(t)
	h := &whoami{}
	url := serve(t, pki.ServerConfig(ca.Source("orders"), ca, pki.AuthorizeID(ca.ID("gateway"))), h)
	c := client(t, pki.ClientConfig(ca.Source("gateway"), ca, pki.AuthorizeID(ca.ID("orders"))), true)
	got, err := get(c, url)
	if err != nil {
		t.Fatalf("gateway → orders: %v", err)
	}
	if want := ca.ID("gateway").String(); got != want {
		t.Fatalf("got peer %q, want %q", got, want)
	}
}

func TestPlaintextConnectionRefused(t *testing.T) {
	ca := pkitest.NewCA(t)
	h := &whoami{}
	url := serve(t, pki.ServerConfig(ca.Source("orders"), ca, pki.AuthorizeMemberOf(ca.TrustDomain)), h)
	plain := "http://" + strings.TrimPrefix(url, "https://")

	resp, err := http.Get(plain)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Fatalf("got HTTP %d for plaintext HTTP, want a refusal", resp.StatusCode)
		}
	}
	// A raw request on the TCP connection gets no HTTP answer from the handler.
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(url, "https://"), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(3 * time.Second))
	conn.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	line, _ := bufio.NewReader(conn).ReadString('\n')
	if strings.Contains(line, " 200 ") {
		t.Fatalf("got %q for plaintext on the wire, want no 200", line)
	}
	if n := h.hits.Load(); n != 0 {
		t.Fatalf("got %d plaintext requests to the handler, want 0", n)
	}
}

func TestCertificateFromAnotherCARefused(t *testing.T) {
	ours, theirs := pkitest.NewCA(t), pkitest.NewCA(t) // same trust domain, different roots
	logger, logs := newLogger()
	h := &whoami{}
	url := serve(t, pki.ServerConfig(ours.Source("orders"), ours, pki.AuthorizeID(ours.ID("gateway")), pki.WithLogger(logger)), h)

	t.Run("client from another CA", func(t *testing.T) {
		c := client(t, pki.ClientConfig(theirs.Source("gateway"), ours, pki.AuthorizeID(ours.ID("orders"))), false)
		if _, err := get(c, url); err == nil {
			t.Fatalf("got a response for a client certificate from another CA, want a refused handshake")
		}
		if n := h.hits.Load(); n != 0 {
			t.Fatalf("got %d requests to the handler, want 0", n)
		}
		lines := logs.lines()
		if len(lines) != 1 || !strings.Contains(lines[0], "certificate not verified") ||
			!strings.Contains(lines[0], "peer_id=spiffe://example.org/svc/gateway") ||
			!strings.Contains(lines[0], "unknown authority") {
			t.Fatalf("got log %q, want one line: certificate not verified, the peer's ID, unknown authority", lines)
		}
	})
	t.Run("server from another CA", func(t *testing.T) {
		c := client(t, pki.ClientConfig(ours.Source("gateway"), theirs, pki.AuthorizeID(ours.ID("orders"))), false)
		if _, err := get(c, url); err == nil {
			t.Fatalf("got a response from a server whose CA the client does not trust, want a refused handshake")
		}
	})
}

func TestUnauthorizedIDRefusedWithLogLine(t *testing.T) {
	ca := pkitest.NewCA(t)
	t.Run("server refuses client", func(t *testing.T) {
		logger, logs := newLogger()
		h := &whoami{}
		url := serve(t, pki.ServerConfig(ca.Source("orders"), ca, pki.AuthorizeID(ca.ID("gateway")), pki.WithLogger(logger)), h)
		c := client(t, pki.ClientConfig(ca.Source("consumers"), ca, pki.AuthorizeID(ca.ID("orders"))), false)
		if _, err := get(c, url); err == nil {
			t.Fatalf("got a response for consumers calling orders, want a refusal")
		}
		if n := h.hits.Load(); n != 0 {
			t.Fatalf("got %d requests to the handler, want 0", n)
		}
		lines := logs.lines()
		want := []string{"level=WARN", "SPIFFE ID not authorized", "peer=client",
			"peer_id=spiffe://example.org/svc/consumers", "want=spiffe://example.org/svc/gateway"}
		if len(lines) != 1 || !containsAll(lines[0], want) {
			t.Fatalf("got log %q, want one line with %q", lines, want)
		}
	})
	t.Run("client refuses server", func(t *testing.T) {
		logger, logs := newLogger()
		url := serve(t, pki.ServerConfig(ca.Source("impostor"), ca, pki.AuthorizeMemberOf(ca.TrustDomain)), &whoami{})
		c := client(t, pki.ClientConfig(ca.Source("gateway"), ca,
			pki.AuthorizeOneOf(ca.ID("orders"), ca.ID("consumers")), pki.WithLogger(logger)), false)
		_, err := get(c, url)
		if !errors.Is(err, pki.ErrUnauthorized) {
			t.Fatalf("got %v, want an error wrapping ErrUnauthorized", err)
		}
		lines := logs.lines()
		want := []string{"peer=server", "peer_id=spiffe://example.org/svc/impostor",
			`want="one of [spiffe://example.org/svc/orders spiffe://example.org/svc/consumers]"`}
		if len(lines) != 1 || !containsAll(lines[0], want) {
			t.Fatalf("got log %q, want one line with %q", lines, want)
		}
	})
}

func TestExpiredCertificateRefused(t *testing.T) {
	// The CA is created two days ago, issues the gateway a certificate for
	// an hour then, and comes back to now to issue the server's.
	var offset atomic.Int64
	offset.Store(int64(-48 * time.Hour))
	ca := pkitest.NewCA(t, pkitest.WithLeafTTL(time.Hour),
		pkitest.WithClock(func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }))
	expired := ca.Source("gateway")
	offset.Store(0)
	server := ca.Source("orders")
	if s, _ := expired.GetX509SVID(); !s.Certificates[0].NotAfter.Before(time.Now()) {
		t.Fatalf("got NotAfter %v, want a certificate that has expired", s.Certificates[0].NotAfter)
	}
	logger, logs := newLogger()
	h := &whoami{}
	url := serve(t, pki.ServerConfig(server, ca, pki.AuthorizeID(ca.ID("gateway")), pki.WithLogger(logger)), h)

	if _, err := get(client(t, pki.ClientConfig(expired, ca, pki.AuthorizeID(ca.ID("orders"))), false), url); err == nil {
		t.Fatalf("got a response for an expired client certificate, want a refused handshake")
	}
	if lines := logs.lines(); len(lines) != 1 || !strings.Contains(lines[0], "expired") {
		t.Fatalf("got log %q, want one line saying the certificate expired", lines)
	}
	if _, err := get(client(t, pki.ClientConfig(ca.Source("gateway"), ca, pki.AuthorizeID(ca.ID("orders"))), false), url); err != nil {
		t.Fatalf("a fresh certificate: %v", err)
	}
	if h.hits.Load() != 1 {
		t.Fatalf("got %d requests to the handler, want 1 (the fresh certificate's)", h.hits.Load())
	}
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
