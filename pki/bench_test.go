package pki_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/pki"
	"github.com/gatehouse-dev/gatehouse/pki/pkitest"
)

// Run: go test ./pki -run '^$' -bench . -benchmem -benchtime 2s
//
// Besides ns/op, each benchmark reports cpu-µs/op: the CPU time the whole
// process (both ends, and the proxy) spent per operation. On a shared,
// busy machine wall-clock numbers swing with the neighbours' load; CPU time
// per operation swings much less, and on a CPU-bound host its ratio is the
// throughput ratio.

// measureCPU starts measuring the process's CPU time; the returned
// function reports it per operation.
func measureCPU(b *testing.B) (report func()) {
	start := cpuTime()
	return func() {
		b.ReportMetric(float64((cpuTime()-start).Microseconds())/float64(b.N), "cpu-µs/op")
	}
}

// handshake runs one full TLS handshake between client and server over an
// in-memory pipe, so that only the TLS work is measured. The server sends no
// session tickets: they come after the handshake (and would block the
// synchronous pipe), and no client here resumes.
func handshake(b *testing.B, client, server *tls.Config) {
	c, s := net.Pipe()
	done := make(chan error, 1)
	go func() { done <- tls.Server(s, server).Handshake() }()
	cli := tls.Client(c, client)
	err := cli.Handshake()
	if err == nil {
		// TLS 1.3 verifies the client certificate after the client is done:
		// wait for the server's verdict too.
		err = <-done
	} else {
		<-done
	}
	c.Close() // not cli.Close: a close_notify on a synchronous pipe waits for a reader
	s.Close()
	if err != nil {
		b.Fatal(err)
	}
}

// webPKI returns a plain server-authenticated TLS 1.3 pair with the same key
// type (ECDSA P-256) as our certificates: a root, a leaf for "localhost",
// host name verification. It is the baseline of the handshake benchmarks.
func webPKI(b *testing.B) (client, server *tls.Config) {
	rootKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	root := &x509.Certificate{SerialNumber: big.NewInt(1), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	rootDER, _ := x509.CreateCertificate(rand.Reader, root, root, rootKey.Public(), rootKey)
	root, _ = x509.ParseCertificate(rootDER)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), DNSNames: []string{"localhost"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, root, leafKey.Public(), rootKey)
	if err != nil {
		b.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(root)
	server = &tls.Config{MinVersion: tls.VersionTLS13,
		Certificates: []tls.Certificate{{Certificate: [][]byte{leafDER}, PrivateKey: leafKey}}}
	client = &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: pool, ServerName: "localhost"}
	return client, server
}

// BenchmarkHandshakeTLS is the baseline: a full TLS 1.3 handshake that
// authenticates the server only, by web PKI rules.
func BenchmarkHandshakeTLS(b *testing.B) {
	client, server := webPKI(b)
	server.SessionTicketsDisabled = true
	b.ReportAllocs()
	report := measureCPU(b)
	for b.Loop() {
		handshake(b, client, server)
	}
	report()
}

// BenchmarkHandshakeMTLS is a full TLS 1.3 handshake with ServerConfig and
// ClientConfig: both sides present a certificate, both verify the other's
// chain against the bundle and authorize its SPIFFE ID.
func BenchmarkHandshakeMTLS(b *testing.B) {
	ca := pkitest.NewCA(b)
	server := pki.ServerConfig(ca.Source("orders"), ca.Bundle(), pki.AuthorizeID(ca.ID("gateway")))
	client := pki.ClientConfig(ca.Source("gateway"), ca.Bundle(), pki.AuthorizeID(ca.ID("orders")))
	server.SessionTicketsDisabled = true
	b.ReportAllocs()
	report := measureCPU(b)
	for b.Loop() {
		handshake(b, client, server)
	}
	report()
}

// proxied runs a reverse proxy (httputil.ReverseProxy, as the gateway uses)
// on loopback in front of a backend listening on backendLn, and measures
// requests per second through it with keep-alive connections everywhere.
func proxied(b *testing.B, backendLn net.Listener, scheme string, upstream *http.Transport) {
	body := []byte(`{"id":"6f1c","owner":"alice","item":"pizza","quantity":2}`)
	quiet := log.New(io.Discard, "", 0) // connections cut when a run ends are no news
	backend := &http.Server{ErrorLog: quiet, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})}
	go backend.Serve(backendLn)
	defer backend.Close()

	target := &url.URL{Scheme: scheme, Host: backendLn.Addr().String()}
	proxy := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target) }, Transport: upstream}
	proxyLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	front := &http.Server{Handler: proxy, ErrorLog: quiet}
	go front.Serve(proxyLn)
	defer front.Close()
	defer upstream.CloseIdleConnections()

	clientTr := &http.Transport{MaxIdleConnsPerHost: 256}
	defer clientTr.CloseIdleConnections()
	c := &http.Client{Transport: clientTr}
	url := "http://" + proxyLn.Addr().String() + "/orders/6f1c"
	get := func() error {
		resp, err := c.Get(url)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return &statusError{resp.StatusCode, ""}
		}
		return nil
	}
	// Warm up with as many concurrent callers as the timed loop has, so
	// that every connection (and its handshake) exists before timing.
	const parallelism = 8
	var warm sync.WaitGroup
	for range parallelism * runtime.GOMAXPROCS(0) {
		warm.Go(func() {
			for range 8 {
				if err := get(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	warm.Wait()
	b.ReportAllocs()
	b.SetParallelism(parallelism)
	b.ResetTimer()
	report := measureCPU(b)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := get(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	report()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

func upstreamTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost = 1024, 256
	return t
}

// BenchmarkProxyPlaintext is the baseline: proxy → backend in plain HTTP.
func BenchmarkProxyPlaintext(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	proxied(b, ln, "http", upstreamTransport())
}

// BenchmarkProxyMTLS is the same with proxy → backend over mTLS with
// ServerConfig and ClientConfig (HTTP/1.1, connections reused).
func BenchmarkProxyMTLS(b *testing.B) {
	ca := pkitest.NewCA(b)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ln = tls.NewListener(ln, pki.ServerConfig(ca.Source("orders"), ca.Bundle(), pki.AuthorizeID(ca.ID("gateway"))))
	t := upstreamTransport()
	t.TLSClientConfig = pki.ClientConfig(ca.Source("gateway"), ca.Bundle(), pki.AuthorizeID(ca.ID("orders")))
	proxied(b, ln, "https", t)
}

// BenchmarkProxyMTLSHTTP2 is BenchmarkProxyMTLS with HTTP/2 to the backend
// (ALPN "h2" on the listener): one multiplexed connection instead of one per
// concurrent request.
func BenchmarkProxyMTLSHTTP2(b *testing.B) {
	ca := pkitest.NewCA(b)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	sc := pki.ServerConfig(ca.Source("orders"), ca.Bundle(), pki.AuthorizeID(ca.ID("gateway")))
	sc.NextProtos = []string{"h2", "http/1.1"}
	ln = tls.NewListener(ln, sc)
	t := upstreamTransport()
	t.TLSClientConfig = pki.ClientConfig(ca.Source("gateway"), ca.Bundle(), pki.AuthorizeID(ca.ID("orders")))
	proxied(b, ln, "https", t)
}
