package oauth

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// TokenResponse is a successful token endpoint response (RFC 6749 §5.1,
// RFC 8693 §2.2.1).
type TokenResponse struct {
	AccessToken     string `json:"access_token"`
	TokenType       string `json:"token_type"`
	ExpiresIn       int64  `json:"expires_in,omitempty"`
	RefreshToken    string `json:"refresh_token,omitempty"`
	Scope           string `json:"scope,omitempty"`
	IDToken         string `json:"id_token,omitempty"`
	IssuedTokenType string `json:"issued_token_type,omitempty"`
}

// Client authentication methods at the token endpoint (RFC 6749 §2.3.1,
// OpenID Connect Core §9).
const (
	AuthClientSecretBasic = "client_secret_basic"
	AuthClientSecretPost  = "client_secret_post"
	// AuthTLSClientAuth is RFC 8705 §2.1: the client's TLS certificate
	// authenticates it, and the request names it by client_id alone.
	AuthTLSClientAuth = "tls_client_auth"
)

// TokenClient calls a token endpoint as a confidential client. The zero
// value is not usable: set TokenURL and ClientID.
type TokenClient struct {
	TokenURL     string
	ClientID     string
	ClientSecret string
	// AuthMethod is how the client authenticates: AuthClientSecretBasic
	// (the default when empty, and what RFC 6749 §2.3.1 requires servers to
	// support), AuthClientSecretPost, for servers that read the
	// credentials only from the form, or AuthTLSClientAuth, where
	// HTTPClient presents the client's certificate and there is no secret.
	AuthMethod string
	// HTTPClient; if nil, http.DefaultClient.
	HTTPClient *http.Client
}

// maxResponse bounds what the client reads from a token endpoint.
const maxResponse = 1 << 20

// Token posts params (grant_type and the grant's parameters) and returns the
// response. A protocol error is returned as an *Error carrying the server's
// code and HTTP status; transport failures are returned wrapped.
func (c *TokenClient) Token(ctx context.Context, params url.Values) (*TokenResponse, error) {
	post, tlsAuth := c.AuthMethod == AuthClientSecretPost, c.AuthMethod == AuthTLSClientAuth
	if !post && !tlsAuth && c.AuthMethod != "" && c.AuthMethod != AuthClientSecretBasic {
		return nil, fmt.Errorf("token request: unsupported client authentication method %q", c.AuthMethod)
	}
	if post || tlsAuth {
		params = maps.Clone(params)
		params.Set("client_id", c.ClientID)
	}
	if post {
		params.Set("client_secret", c.ClientSecret)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.TokenURL, strings.NewReader(params.Encode()))
	if err != nil {
		return nil, fmt.Errorf("token request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if !post && !tlsAuth {
		// RFC 6749 §2.3.1: the client credentials are form-encoded before Basic.
		req.SetBasicAuth(url.QueryEscape(c.ClientID), url.QueryEscape(c.ClientSecret))
	}
	hc := c.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("token request: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return nil, fmt.Errorf("token response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		e := &Error{Status: resp.StatusCode}
		if json.Unmarshal(body, e) != nil || e.Code == "" {
			return nil, fmt.Errorf("token endpoint: HTTP %d", resp.StatusCode)
		}
		return nil, e
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/json" {
		return nil, fmt.Errorf("token endpoint: content type %q, want application/json", mt)
	}
	var tr TokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		return nil, fmt.Errorf("token response: %w", err)
	}
	if tr.AccessToken == "" || !strings.EqualFold(tr.TokenType, "bearer") && tr.TokenType != "N_A" {
		return nil, fmt.Errorf("token response: no bearer access token")
	}
	return &tr, nil
}

// Expiry returns when the response's access token expires, measured from
// issued; the zero time when the server did not say.
func (r *TokenResponse) Expiry(issued time.Time) time.Time {
	if r.ExpiresIn <= 0 {
		return time.Time{}
	}
	return issued.Add(time.Duration(r.ExpiresIn) * time.Second)
}
