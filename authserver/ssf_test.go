package authserver

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/gatehouse-dev/gatehouse/internal/accounts"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/internal/secevent"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// ssfReceiver registers a receiver client allowed scopes and returns an
// access token for it with those scopes.
func (f *fixture) ssfReceiver(id string, scopes ...string) string {
	f.t.Helper()
	secret := f.addClient(accounts.ClientSpec{ID: id, Grants: []string{oauth.GrantClientCredentials},
		Scopes: scopes, Audience: []string{f.srv.Issuer()}})
	form := url.Values{"grant_type": {oauth.GrantClientCredentials}}
	if len(scopes) > 0 {
		form.Set("scope", strings.Join(scopes, " "))
	}
	r := f.token(form, id, secret)
	if r.status != 200 {
		f.t.Fatalf("client_credentials: got %d %v", r.status, r.body)
	}
	return r.str("access_token")
}

// ssfCall sends a JSON request with the bearer token and returns the status
// and the decoded body (nil if none).
func (f *fixture) ssfCall(method, path, token string, body any) (int, map[string]any) {
	f.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		data, _ := json.Marshal(b)
		rd = bytes.NewReader(data)
	}
	req, _ := http.NewRequest(method, f.srv.Issuer()+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := f.public.Client().Do(req)
	if err != nil {
		f.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(data) > 0 && data[0] == '{' {
		if err := json.Unmarshal(data, &out); err != nil {
			f.t.Fatalf("%s %s: body %q: %v", method, path, data, err)
		}
	}
	return resp.StatusCode, out
}

// createStream creates a poll stream for every supported event and returns
// its ID.
func (f *fixture) createStream(token string) string {
	f.t.Helper()
	status, body := f.ssfCall("POST", pathSSFStreams, token, map[string]any{
		"delivery": map[string]string{"method": deliveryPoll}, "events_requested": secevent.Supported})
	if status != http.StatusCreated {
		f.t.Fatalf("create stream: got %d %v, want 201", status, body)
	}
	return body["stream_id"].(string)
}

// poll polls the stream and returns the SETs by jti.
func (f *fixture) poll(token, streamID string, req map[string]any) map[string]string {
	f.t.Helper()
	status, body := f.ssfCall("POST", pathSSFPoll+streamID, token, req)
	if status != 200 {
		f.t.Fatalf("poll: got %d %v", status, body)
	}
	sets := map[string]string{}
	for jti, raw := range body["sets"].(map[string]any) {
		sets[jti] = raw.(string)
	}
	return sets
}

// ecKey parses the P-256 public JWK with kid out of the server's JWKS by
// hand, so the independent verifier shares no JOSE code with the server.
func (f *fixture) ecKey(kid string) *ecdsa.PublicKey {
	f.t.Helper()
	_, body := get(f.t, f.public, pathJWKS)
	var set struct {
		Keys []struct{ Kid, Kty, Crv, X, Y string }
	}
	json.Unmarshal([]byte(body), &set)
	for _, k := range set.Keys {
		if k.Kid == kid && k.Kty == "EC" && k.Crv == "P-256" {
			x, _ := base64.RawURLEncoding.DecodeString(k.X)
			y, _ := base64.RawURLEncoding.DecodeString(k.Y)
			return &ecdsa.PublicKey{Curve: elliptic.P256(), X: new(big.Int).SetBytes(x), Y: new(big.Int).SetBytes(y)}
		}
	}
	f.t.Fatalf("no P-256 key %q in the JWKS %s", kid, body)
	return nil
}

// TestSETIndependentlyVerified revokes a session and checks the SET the
// stream delivers with golang-jwt: signature, typ, and the claims of RFC
// 8417, SSF 1.0 and CAEP.
func TestSETIndependentlyVerified(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	f.addUser("alice", "alice-pw-123456")
	secret := f.addClientWithRefresh("web")
	tok := f.passwordGrant("web", secret, "alice", "alice-pw-123456")
	token := f.ssfReceiver("rcv", ScopeSSFManage)
	stream := f.createStream(token)
	revokeReq, _ := http.NewRequest("POST", f.srv.Issuer()+pathRevoke, strings.NewReader(url.Values{"token": {tok.str("refresh_token")}}.Encode()))
	revokeReq.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	revokeReq.SetBasicAuth("web", secret)
	if resp, err := f.public.Client().Do(revokeReq); err != nil || resp.StatusCode != 200 {
		t.Fatalf("revoke: %v %v", resp, err)
	}

	sets := f.poll(token, stream, map[string]any{"returnImmediately": true})
	if len(sets) != 1 {
		t.Fatalf("got %d SETs, want 1: %v", len(sets), sets)
	}
	for jti, raw := range sets {
		var claims jwt.MapClaims
		parsed, err := jwt.ParseWithClaims(raw, &claims, func(tk *jwt.Token) (any, error) {
			kid, _ := tk.Header["kid"].(string)
			return f.ecKey(kid), nil
		}, jwt.WithValidMethods([]string{"ES256"}), jwt.WithIssuer(f.srv.Issuer()), jwt.WithAudience("rcv"), jwt.WithIssuedAt(), jwt.WithTimeFunc(f.clock.Now))
		if err != nil || !parsed.Valid {
			t.Fatalf("golang-jwt: %v", err)
		}
		if typ := parsed.Header["typ"]; typ != "secevent+jwt" {
			t.Errorf("typ: got %v, want secevent+jwt", typ)
		}
		if claims["jti"] != jti {
			t.Errorf("jti: got %v, want the sets key %q", claims["jti"], jti)
		}
		if _, ok := claims["exp"]; ok {
			t.Error("a SET must not carry exp (RFC 8417 §2.2)")
		}
		if claims["txn"] == nil || claims["iat"] == nil {
			t.Errorf("missing txn or iat: %v", claims)
		}
		sub := claims["sub_id"].(map[string]any)
		if sub["format"] != "complex" || sub["user"].(map[string]any)["format"] != "iss_sub" ||
			sub["session"].(map[string]any)["format"] != "opaque" || sub["session"].(map[string]any)["id"] == "" {
			t.Errorf("sub_id: got %v, want complex with iss_sub user and opaque session", sub)
		}
		events := claims["events"].(map[string]any)
		ev, ok := events[secevent.SessionRevoked].(map[string]any)
		if len(events) != 1 || !ok {
			t.Fatalf("events: got %v, want one %s", events, secevent.SessionRevoked)
		}
		if _, ok := ev["event_timestamp"].(float64); !ok || ev["initiating_entity"] != "user" {
			t.Errorf("event payload: got %v, want event_timestamp and initiating_entity user", ev)
		}
	}
}

func TestSSFConfiguration(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	status, body := get(t, f.public, "/.well-known/ssf-configuration")
	if status != 200 {
		t.Fatalf("got %d", status)
	}
	var m map[string]any
	json.Unmarshal([]byte(body), &m)
	if m["issuer"] != f.srv.Issuer() || m["configuration_endpoint"] != f.srv.Issuer()+pathSSFStreams ||
		m["jwks_uri"] != f.srv.Issuer()+pathJWKS || m["spec_version"] != "1_0" ||
		m["status_endpoint"] != f.srv.Issuer()+pathSSFStatus {
		t.Errorf("got %v", m)
	}
}

func TestSSFStreamErrors(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	manage := f.ssfReceiver("rcv", ScopeSSFManage)
	other := f.ssfReceiver("rcv2", ScopeSSFManage)
	read := f.ssfReceiver("reader", ScopeSSFRead)
	noScope := f.ssfReceiver("plain")
	stream := f.createStream(manage)
	otherStream := f.createStream(other)
	f.addUser("alice", "alice-pw-123456")
	webSecret := f.addClient(accounts.ClientSpec{ID: "web", Grants: []string{oauth.GrantPassword}, Audience: []string{f.srv.Issuer()}})
	userToken := f.passwordGrant("web", webSecret, "alice", "alice-pw-123456").str("access_token")

	tests := []struct {
		name, method, path, token string
		body                      any
		want                      int
	}{
		{"no token", "POST", pathSSFStreams, "", map[string]any{}, 401},
		{"garbage token", "GET", pathSSFStreams, "not-a-token", nil, 401},
		{"user token", "POST", pathSSFStreams, userToken, map[string]any{}, 403},
		{"no scope", "POST", pathSSFStreams, noScope, map[string]any{}, 403},
		{"read scope cannot create", "POST", pathSSFStreams, read, map[string]any{}, 403},
		{"read scope can read", "GET", pathSSFStreams, read, nil, 200},
		{"second stream", "POST", pathSSFStreams, manage, map[string]any{}, 409},
		{"not json", "POST", pathSSFPoll + stream, manage, "{", 400},
		{"negative maxEvents", "POST", pathSSFPoll + stream, manage, map[string]any{"maxEvents": -1}, 400},
		{"read another's stream", "GET", pathSSFStreams + "?stream_id=" + otherStream, manage, nil, 404},
		{"poll another's stream", "POST", pathSSFPoll + otherStream, manage, map[string]any{"returnImmediately": true}, 404},
		{"delete another's stream", "DELETE", pathSSFStreams + "?stream_id=" + otherStream, manage, nil, 404},
		{"verify unknown stream", "POST", pathSSFVerify, manage, map[string]any{"stream_id": "nope"}, 404},
		{"read own", "GET", pathSSFStreams + "?stream_id=" + stream, manage, nil, 200},
		{"delete own", "DELETE", pathSSFStreams + "?stream_id=" + stream, manage, nil, 204},
		{"poll deleted", "POST", pathSSFPoll + stream, manage, map[string]any{}, 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := f.ssfCall(tt.method, tt.path, tt.token, tt.body)
			if status != tt.want {
				t.Errorf("got %d %v, want %d", status, body, tt.want)
			}
			if status >= 400 && (body == nil || body["error"] == "") {
				t.Errorf("got body %v, want an error object", body)
			}
		})
	}
	// Push without an endpoint, by a client that may create streams.
	manage3 := f.ssfReceiver("rcv3", ScopeSSFManage)
	status, _ := f.ssfCall("POST", pathSSFStreams, manage3, map[string]any{"delivery": map[string]string{"method": "urn:ietf:rfc:8935"}})
	if status != 400 {
		t.Errorf("push stream: got %d, want 400", status)
	}
}

// TestSSFPollAcknowledged checks RFC 8936 semantics: acknowledged SETs are
// never sent again, also when the acknowledgement is the receiver's only
// memory (a transmitter that forgot the stream's cursor).
func TestSSFPollAcknowledged(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	token := f.ssfReceiver("rcv", ScopeSSFManage)
	stream := f.createStream(token)
	for i := range 5 {
		f.srv.cfg.Store.AppendEvent(t.Context(), storeEvent(secevent.TokenRevoked, "jti-"+string(rune('a'+i))))
	}
	sets := f.poll(token, stream, map[string]any{"returnImmediately": true, "maxEvents": 3})
	if len(sets) != 3 {
		t.Fatalf("got %d SETs, want 3", len(sets))
	}
	var acks []string
	for jti := range sets {
		acks = append(acks, jti)
	}
	sets = f.poll(token, stream, map[string]any{"returnImmediately": true, "ack": acks})
	if len(sets) != 2 {
		t.Fatalf("after ack: got %d SETs, want the 2 not yet sent", len(sets))
	}
	for jti := range sets {
		for _, a := range acks {
			if a == jti {
				t.Errorf("acknowledged %s sent again", jti)
			}
		}
	}
	// The transmitter forgets the cursor (a restart, another replica); the
	// receiver's last acknowledgement restores it.
	f.srv.ssf.streams[stream].cursor = 0
	last := acks[0]
	for _, a := range acks {
		if id, _, _ := parseSetID(a); id > mustID(last) {
			last = a
		}
	}
	again := f.poll(token, stream, map[string]any{"returnImmediately": true, "ack": []string{last}})
	if len(again) != 2 {
		t.Errorf("after a lost cursor: got %d SETs, want the same 2", len(again))
	}
}

func mustID(jti string) int64 { id, _, _ := parseSetID(jti); return id }

// TestSSFLongPollWakes: a long poll returns as soon as an event is
// appended, not at its deadline.
func TestSSFLongPollWakes(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	token := f.ssfReceiver("rcv", ScopeSSFManage)
	stream := f.createStream(token)
	done := make(chan map[string]string)
	go func() { done <- f.poll(token, stream, map[string]any{}) }()
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	f.srv.cfg.Store.AppendEvent(t.Context(), storeEvent(secevent.TokenRevoked, "jti-x"))
	select {
	case sets := <-done:
		if len(sets) != 1 {
			t.Errorf("got %d SETs, want 1", len(sets))
		}
		t.Logf("woke after %v", time.Since(start))
	case <-time.After(10 * time.Second): // generous; the deadline is 25s
		t.Fatal("the long poll did not wake")
	}
}

func TestSSFVerification(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	token := f.ssfReceiver("rcv", ScopeSSFManage)
	stream := f.createStream(token)
	if status, body := f.ssfCall("POST", pathSSFVerify, token, map[string]any{"stream_id": stream, "state": "xyz"}); status != 204 {
		t.Fatalf("verify: got %d %v", status, body)
	}
	sets := f.poll(token, stream, map[string]any{"returnImmediately": true})
	if len(sets) != 1 {
		t.Fatalf("got %d SETs, want the verification event", len(sets))
	}
	for jti, raw := range sets {
		if !strings.Contains(string(mustPayload(t, raw)), `"state":"xyz"`) {
			t.Errorf("verification SET %s lacks the state", jti)
		}
		if left := f.poll(token, stream, map[string]any{"returnImmediately": true, "ack": []string{jti}}); len(left) != 0 {
			t.Errorf("acknowledged verification sent again: %v", left)
		}
	}
}

func mustPayload(t *testing.T, raw string) []byte {
	parts := strings.Split(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func storeEvent(typ, jti string) store.Event {
	return store.Event{Type: typ, TokenID: jti, Subject: "u1", CreatedAt: time.Now().UTC()}
}
