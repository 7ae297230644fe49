package gateway

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestUpstreamTimeout: an upstream that sends no headers within the route's
// timeout is answered 504 with a JSON body; the timeout bounds the headers
// only, so a slow body still arrives whole.
func TestUpstreamTimeout(t *testing.T) {
	fx := newFixture(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	slowHeaders := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slowHeaders.Close)
	slowBody := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		time.Sleep(300 * time.Millisecond)
		io.WriteString(w, "late but whole")
	}))
	t.Cleanup(slowBody.Close)
	public := []Rule{{Public: true}}
	// An *http.Transport gets the timeout as ResponseHeaderTimeout; any
	// other RoundTripper, a timer per request.
	custom := roundTripperFunc(func(r *http.Request) (*http.Response, error) { return http.DefaultTransport.RoundTrip(r) })
	g := fx.gateway(t, []Route{
		{Prefix: "/route-timeout", Upstream: slowHeaders.URL, Timeout: 100 * time.Millisecond, Rules: public},
		{Prefix: "/gateway-timeout", Upstream: slowHeaders.URL, Rules: public},
		{Prefix: "/slow-body", Upstream: slowBody.URL, Timeout: 100 * time.Millisecond, Rules: public},
		{Prefix: "/custom/route-timeout", Upstream: slowHeaders.URL, Timeout: 100 * time.Millisecond, Rules: public, Transport: custom},
		{Prefix: "/custom/slow-body", Upstream: slowBody.URL, Timeout: 100 * time.Millisecond, Rules: public, Transport: custom},
	}, func(c *Config) { c.UpstreamTimeout = 150 * time.Millisecond })
	tests := []struct {
		name, path  string
		wantStatus  int
		wantCode    string
		wantBody    string
		maxDuration time.Duration
	}{
		{name: "route_timeout", path: "/route-timeout", wantStatus: http.StatusGatewayTimeout, wantCode: "gateway_timeout", maxDuration: 2 * time.Second},
		{name: "gateway_timeout", path: "/gateway-timeout", wantStatus: http.StatusGatewayTimeout, wantCode: "gateway_timeout", maxDuration: 2 * time.Second},
		{name: "slow_body_is_not_a_timeout", path: "/slow-body", wantStatus: http.StatusOK, wantBody: "late but whole"},
		{name: "custom_transport_timeout", path: "/custom/route-timeout", wantStatus: http.StatusGatewayTimeout, wantCode: "gateway_timeout", maxDuration: 2 * time.Second},
		{name: "custom_transport_slow_body", path: "/custom/slow-body", wantStatus: http.StatusOK, wantBody: "late but whole"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			w := serve(t, g, http.MethodGet, tt.path, "", nil)
			if w.Code != tt.wantStatus {
				t.Fatalf("got %d %s, want %d", w.Code, w.Body, tt.wantStatus)
			}
			if tt.wantCode != "" {
				if code := errorCode(t, w); code != tt.wantCode {
					t.Errorf("got error %q, want %q", code, tt.wantCode)
				}
				if d := time.Since(start); d > tt.maxDuration {
					t.Errorf("took %v, want the timeout to cut it short", d)
				}
			}
			if tt.wantBody != "" && w.Body.String() != tt.wantBody {
				t.Errorf("got body %q, want %q", w.Body, tt.wantBody)
			}
		})
	}
}

// TestBodyLimit: a body over MaxBodyBytes is refused with 413, before the
// upstream when its length is declared, while it streams when it is not.
func TestBodyLimit(t *testing.T) {
	fx := newFixture(t)
	var received atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			return
		}
		received.Store(n)
		io.WriteString(w, "ok")
	}))
	t.Cleanup(up.Close)
	g := fx.gateway(t, []Route{{Prefix: "/upload", Upstream: up.URL, Rules: []Rule{{Public: true}}}},
		func(c *Config) { c.MaxBodyBytes = 1024 })
	gw := httptest.NewServer(g)
	t.Cleanup(gw.Close)
	tests := []struct {
		name       string
		size       int
		chunked    bool
		wantStatus int
	}{
		{name: "within", size: 1024, wantStatus: http.StatusOK},
		{name: "within_chunked", size: 1000, chunked: true, wantStatus: http.StatusOK},
		{name: "declared_too_large", size: 1025, wantStatus: http.StatusRequestEntityTooLarge},
		{name: "chunked_too_large", size: 64 << 10, chunked: true, wantStatus: http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			received.Store(-1)
			var body io.Reader = strings.NewReader(strings.Repeat("x", tt.size))
			if tt.chunked {
				body = io.MultiReader(body) // hides the length: sent chunked
			}
			req, err := http.NewRequest(http.MethodPost, gw.URL+"/upload", body)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := gw.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("got %d %s, want %d", resp.StatusCode, data, tt.wantStatus)
			}
			switch {
			case tt.wantStatus == http.StatusOK && received.Load() != int64(tt.size):
				t.Errorf("upstream got %d bytes, want %d", received.Load(), tt.size)
			case tt.wantStatus != http.StatusOK && received.Load() != -1:
				t.Errorf("upstream completed a request of %d bytes, want none", received.Load())
			case tt.wantStatus != http.StatusOK && !strings.Contains(string(data), `"request_too_large"`):
				t.Errorf("got body %s, want a request_too_large JSON error", data)
			}
		})
	}
}

// TestWebSocketUpgrade: an upgrade request is authenticated like any other,
// then the connection is passed through both ways — beyond the listener's
// read and write timeouts, which end with the upgrade.
func TestWebSocketUpgrade(t *testing.T) {
	fx := newFixture(t)
	var sawAuth, sawForged atomic.Value
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "upgrade required", http.StatusUpgradeRequired)
			return
		}
		sawAuth.Store(r.Header.Get("Authorization"))
		sawForged.Store(r.Header.Get("X-Forwarded-User"))
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		io.Copy(conn, brw) // echo until the client closes
	}))
	t.Cleanup(echo.Close)
	g := fx.gateway(t, []Route{{Prefix: "/ws", Upstream: echo.URL}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: g, ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	upgrade := func(t *testing.T, auth string) (net.Conn, *bufio.Reader, *http.Response) {
		t.Helper()
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		req := "GET /ws/chat HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nX-Forwarded-User: carol\r\n"
		if auth != "" {
			req += "Authorization: " + auth + "\r\n"
		}
		if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		return conn, br, resp
	}
	t.Run("authenticated", func(t *testing.T) {
		token := fx.mintFor(t, "alice")
		conn, br, resp := upgrade(t, "Bearer "+token)
		if resp.StatusCode != http.StatusSwitchingProtocols || !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") {
			t.Fatalf("got %s %v, want 101 to websocket", resp.Status, resp.Header)
		}
		for i, msg := range []string{"ping", "after the listener's timeouts"} {
			if i > 0 {
				time.Sleep(400 * time.Millisecond)
			}
			if _, err := io.WriteString(conn, msg); err != nil {
				t.Fatalf("write %q: %v", msg, err)
			}
			buf := make([]byte, len(msg))
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.ReadFull(br, buf); err != nil || string(buf) != msg {
				t.Fatalf("got echo %q (%v), want %q", buf, err, msg)
			}
		}
		if got := sawAuth.Load(); got != "Bearer "+token {
			t.Errorf("upstream got Authorization %q, want the verified token", got)
		}
		if got := sawForged.Load(); got != "" {
			t.Errorf("upstream got X-Forwarded-User %q, want it stripped", got)
		}
	})
	t.Run("anonymous", func(t *testing.T) {
		_, _, resp := upgrade(t, "")
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("got %s, want 401 before any upgrade", resp.Status)
		}
	})
}

// TestHTTP2Upstream: the default transport speaks HTTP/2 to an upstream
// that offers it over TLS, trusting the CA it is given.
func TestHTTP2Upstream(t *testing.T) {
	fx := newFixture(t)
	var proto atomic.Int64
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proto.Store(int64(r.ProtoMajor))
		io.WriteString(w, r.Header.Get("Authorization"))
	}))
	up.EnableHTTP2 = true
	up.StartTLS()
	t.Cleanup(up.Close)
	roots := x509.NewCertPool()
	roots.AddCert(up.Certificate())
	transport := NewTransport()
	transport.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	t.Cleanup(transport.CloseIdleConnections)
	g := fx.gateway(t, []Route{{Prefix: "/h2", Upstream: up.URL}}, func(c *Config) { c.Transport = transport })
	token := fx.mintFor(t, "alice")
	w := serve(t, g, http.MethodGet, "/h2/x", "Bearer "+token, nil)
	if w.Code != http.StatusOK || w.Body.String() != "Bearer "+token {
		t.Fatalf("got %d %q, want 200 with the token echoed", w.Code, w.Body)
	}
	if p := proto.Load(); p != 2 {
		t.Errorf("upstream saw HTTP/%d, want HTTP/2", p)
	}
	// Without the CA, the upstream's certificate is refused: 502.
	g = fx.gateway(t, []Route{{Prefix: "/h2", Upstream: up.URL}})
	if w := serve(t, g, http.MethodGet, "/h2/x", "Bearer "+token, nil); w.Code != http.StatusBadGateway {
		t.Errorf("got %d without the upstream's CA, want 502", w.Code)
	}
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestHopByHopHeaders: headers meant for one connection, and any the client
// names in Connection, do not reach the upstream; the X-Forwarded-* headers
// are the gateway's.
func TestHopByHopHeaders(t *testing.T) {
	fx := newFixture(t)
	up := newUpstream(t, "svc")
	g := fx.gateway(t, []Route{{Prefix: "/api", Upstream: up.URL}})
	hop := http.Header{
		"Connection":          {"keep-alive, X-Internal-Secret"},
		"X-Internal-Secret":   {"named in Connection"},
		"Keep-Alive":          {"timeout=5"},
		"Proxy-Authorization": {"Basic Zm9vOmJhcg=="},
		"Proxy-Connection":    {"keep-alive"},
		"Te":                  {"gzip"},
		"Trailer":             {"X-T"},
		"Upgrade":             {"h2c"},
		"X-Forwarded-Proto":   {"https"},
		"X-Kept":              {"end to end"},
	}
	w := serve(t, g, http.MethodGet, "/api", "Bearer "+fx.mintFor(t, "alice"), hop)
	got := decodeEcho(t, w).Header
	for _, name := range []string{"X-Internal-Secret", "Keep-Alive", "Proxy-Authorization", "Proxy-Connection", "Te", "Trailer", "Upgrade"} {
		if v := got.Get(name); v != "" {
			t.Errorf("upstream got %s: %q, want it removed", name, v)
		}
	}
	if got.Get("X-Kept") != "end to end" {
		t.Errorf("got X-Kept %q, want an ordinary header kept", got.Get("X-Kept"))
	}
	if p := got.Get("X-Forwarded-Proto"); p != "http" {
		t.Errorf("got X-Forwarded-Proto %q, want the gateway's %q", p, "http")
	}
}
