package config

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/gatehouse-dev/gatehouse/outbound"
	"github.com/gatehouse-dev/gatehouse/pki"
	"github.com/gatehouse-dev/gatehouse/resource"
	"github.com/gatehouse-dev/gatehouse/ssf"
)

// Service is what the files of the demo services (`gatehouse demo orders`
// and `gatehouse demo consumers`) have in common: where the service
// listens, whose tokens it accepts, its mutual TLS and its revocation
// stream. See docs/services.md.
type Service struct {
	// Listen address; default 127.0.0.1:9101 (orders), 127.0.0.1:9102
	// (consumers).
	Listen string `yaml:"listen"`
	// Issuer of the access tokens the service accepts; discovery is read
	// below it. Required.
	Issuer string `yaml:"issuer"`
	// JWKSURL; default jwks_uri from discovery.
	JWKSURL string `yaml:"jwks_url"`
	// Audience values accepted in callers' access tokens (the API behind
	// the gateway). Required.
	Audience []string `yaml:"audience"`
	// MTLS, if set, serves https with a client certificate required (see
	// ServiceMTLS); if nil, plain http, for a service behind another
	// encrypting hop only.
	MTLS *ServiceMTLS `yaml:"mtls"`
	// Revocations, if set, makes the service follow the authorization
	// server's Shared Signals stream and refuse revoked tokens within about
	// a second; as the gateway's block, but client_secret_file is required.
	Revocations *Revocations `yaml:"revocations"`
}

// Orders is the file given to `gatehouse demo orders --config`.
type Orders struct {
	Service `yaml:",inline"`
	// Consumers, if set, is the consumers service, which orders asks
	// about the caller before it creates an order.
	Consumers *Downstream `yaml:"consumers"`
}

// Consumers is the file given to `gatehouse demo consumers --config`.
type Consumers struct {
	Service `yaml:",inline"`
	// ServiceAudience is the audience of the tokens other services get by
	// token exchange to call consumers' service endpoint
	// (/consumers/{sub}/validate); default "consumers".
	ServiceAudience string `yaml:"service_audience"`
}

// Downstream is a service that a service calls on its caller's behalf,
// with the caller's token exchanged (RFC 8693) for one whose audience is
// the downstream service.
type Downstream struct {
	// URL of the service. Required.
	URL string `yaml:"url"`
	// SPIFFEID the service must present; required for an https URL, which
	// is reached over mutual TLS with the caller's own certificate (its
	// mtls block).
	SPIFFEID string `yaml:"spiffe_id"`
	// TokenExchange is how the caller's token is exchanged. Required.
	TokenExchange TokenExchange `yaml:"token_exchange"`

	id spiffeid.ID // SPIFFEID, parsed by check
}

// TokenExchange is the token_exchange block of a Downstream: the calling
// service's client (allowed the token-exchange grant, with the audience in
// its exchange_audiences) and the audience it asks for.
type TokenExchange struct {
	ClientID         string `yaml:"client_id"`          // required
	ClientSecretFile string `yaml:"client_secret_file"` // required
	Audience         string `yaml:"audience"`           // required: the downstream service's audience
	TokenURL         string `yaml:"token_url"`          // default token_endpoint from discovery
}

// LoadOrders reads and checks an orders file.
func LoadOrders(path string) (*Orders, error) {
	var c Orders
	if err := load(path, &c); err != nil {
		return nil, fmt.Errorf("orders config: %w", err)
	}
	if c.Listen == "" {
		c.Listen = "127.0.0.1:9101"
	}
	errs := c.Service.check()
	if c.Consumers != nil {
		errs = append(errs, c.Consumers.check(c.MTLS != nil)...)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("orders config %s: %w", path, err)
	}
	return &c, nil
}

// LoadConsumers reads and checks a consumers file.
func LoadConsumers(path string) (*Consumers, error) {
	var c Consumers
	if err := load(path, &c); err != nil {
		return nil, fmt.Errorf("consumers config: %w", err)
	}
	if c.Listen == "" {
		c.Listen = "127.0.0.1:9102"
	}
	if c.ServiceAudience == "" {
		c.ServiceAudience = "consumers"
	}
	if err := errors.Join(c.Service.check()...); err != nil {
		return nil, fmt.Errorf("consumers config %s: %w", path, err)
	}
	return &c, nil
}

// check reports every problem of the common part.
func (s *Service) check() []error {
	var errs []error
	if s.Issuer == "" {
		errs = append(errs, errors.New("issuer is required"))
	}
	if len(s.Audience) == 0 {
		errs = append(errs, errors.New("audience is required"))
	}
	if s.MTLS != nil {
		if err := s.MTLS.check(); err != nil {
			errs = append(errs, err)
		}
	}
	if r := s.Revocations; r != nil && (r.ClientID == "" || r.ClientSecretFile == "") {
		errs = append(errs, errors.New("revocations: client_id and client_secret_file are required"))
	}
	if r := s.Revocations; r != nil && ((r.Delivery != "" && r.Delivery != DeliveryPoll) || r.PushURL != "") {
		errs = append(errs, fmt.Errorf("revocations: the demo services take revocations by poll only (delivery %q, push_url %q)", r.Delivery, r.PushURL))
	}
	return errs
}

// check reports every problem of the block; mtls says whether the calling
// service has an mtls block.
func (d *Downstream) check(mtls bool) []error {
	var errs []error
	u, err := url.Parse(d.URL)
	switch {
	case d.URL == "":
		errs = append(errs, errors.New("consumers: url is required"))
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		errs = append(errs, fmt.Errorf("consumers: url %q: want an http or https URL", d.URL))
	case u.Scheme == "https" && (!mtls || d.SPIFFEID == ""):
		errs = append(errs, errors.New("consumers: an https url is reached over mutual TLS: it needs spiffe_id and the mtls block"))
	}
	if d.SPIFFEID != "" {
		if d.id, err = spiffeid.FromString(d.SPIFFEID); err != nil {
			errs = append(errs, fmt.Errorf("consumers: spiffe_id: %w", err))
		}
	}
	x := d.TokenExchange
	if x.ClientID == "" || x.ClientSecretFile == "" || x.Audience == "" {
		errs = append(errs, errors.New("consumers: token_exchange needs client_id, client_secret_file and audience"))
	}
	return errs
}

// Verifier returns a verifier of the service's issuer for the audiences,
// refusing what revocations (if not nil) says was revoked.
func (s *Service) Verifier(audience []string, revocations resource.Revocations) (*resource.Verifier, error) {
	return resource.NewVerifier(resource.Config{Issuer: s.Issuer, JWKSURL: s.JWKSURL, Audience: audience,
		Revocations: revocations})
}

// Receiver returns the receiver of the revocations block, or nil without
// one; the caller runs it.
func (s *Service) Receiver(ctx context.Context, logger *slog.Logger) (*ssf.Receiver, error) {
	if s.Revocations == nil {
		return nil, nil
	}
	return s.Revocations.Receiver(ctx, s.Issuer, "", logger)
}

// Client returns the HTTP client that calls the downstream service on the
// caller's behalf: the caller's token exchanged for the block's audience
// and, for an https URL, mutual TLS with src's certificate, expecting
// exactly the block's SPIFFE ID.
func (d *Downstream) Client(ctx context.Context, issuer string, src Source, logger *slog.Logger) (*http.Client, error) {
	x := d.TokenExchange
	secret, err := readSecret(x.ClientSecretFile, "")
	if err != nil {
		return nil, fmt.Errorf("token_exchange: client secret: %w", err)
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	if x.TokenURL == "" {
		if x.TokenURL, err = discoverTokenURL(ctx, hc, issuer); err != nil {
			return nil, fmt.Errorf("token_exchange: %w", err)
		}
	}
	var base http.RoundTripper = http.DefaultTransport
	if strings.HasPrefix(d.URL, "https:") {
		base = UpstreamTransport(src, d.id, pki.WithLogger(logger))
	}
	exchange := &outbound.Exchange{TokenURL: x.TokenURL, ClientID: x.ClientID, ClientSecret: secret,
		Audience: x.Audience, HTTPClient: hc}
	return &http.Client{Timeout: 10 * time.Second, Transport: &outbound.Transport{Source: exchange, Base: base}}, nil
}

// serverMetadata is what the parts read from the authorization server's
// discovery document.
type serverMetadata struct {
	Issuer            string `json:"issuer"`
	TokenEndpoint     string `json:"token_endpoint"`
	PKIIssueEndpoint  string `json:"gatehouse_pki_issue_endpoint"`
	PKIBundleEndpoint string `json:"gatehouse_pki_bundle_endpoint"`
}

// discover reads the issuer's OpenID Connect discovery document and checks
// that it names the issuer and a token endpoint.
func discover(ctx context.Context, hc *http.Client, issuer string) (serverMetadata, error) {
	var meta serverMetadata
	u := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return meta, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return meta, fmt.Errorf("discovery: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&meta) != nil ||
		meta.Issuer != issuer || meta.TokenEndpoint == "" {
		return serverMetadata{}, fmt.Errorf("discovery %s: no token_endpoint for issuer %q (HTTP %d)", u, issuer, resp.StatusCode)
	}
	return meta, nil
}
