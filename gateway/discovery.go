package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
)

// metadata is what the gateway reads from the authorization server's
// metadata (OpenID Connect Discovery 1.0 §3, RFC 8414 §2).
type metadata struct {
	Issuer                string `json:"issuer"`
	TokenEndpoint         string `json:"token_endpoint"`
	IntrospectionEndpoint string `json:"introspection_endpoint"`
	RevocationEndpoint    string `json:"revocation_endpoint"` // RFC 8414 §2, RFC 7009
}

// discovery fetches the issuer's metadata once and keeps it; a failed
// fetch is tried again on a later call.
type discovery struct {
	issuer string
	client *http.Client

	mu   sync.Mutex
	meta *metadata
}

// endpoints returns the issuer's metadata.
func (d *discovery) endpoints(ctx context.Context) (metadata, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.meta == nil {
		m, err := discover(ctx, d.client, d.issuer)
		if err != nil {
			return metadata{}, fmt.Errorf("%w: %w", errUnavailable, err)
		}
		d.meta = &m
	}
	return *d.meta, nil
}

// discover reads the issuer's metadata (OpenID Connect discovery, then
// RFC 8414) and checks that it names the issuer.
func discover(ctx context.Context, client *http.Client, issuer string) (metadata, error) {
	base := strings.TrimSuffix(issuer, "/")
	var lastErr error
	for _, u := range []string{base + "/.well-known/openid-configuration", base + "/.well-known/oauth-authorization-server"} {
		meta, err := fetchMetadata(ctx, client, u)
		if err != nil {
			lastErr = err
			continue
		}
		if meta.Issuer != issuer {
			return metadata{}, fmt.Errorf("discovery %s: issuer %q, want %q", u, meta.Issuer, issuer)
		}
		return meta, nil
	}
	return metadata{}, fmt.Errorf("discovery: %w", lastErr)
}

func fetchMetadata(ctx context.Context, client *http.Client, u string) (metadata, error) {
	var m metadata
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return m, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return m, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return m, fmt.Errorf("GET %s: HTTP %d", u, resp.StatusCode)
	}
	err = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&m)
	return m, err
}
