package config

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/gatehouse-dev/gatehouse/outbound"
	"github.com/gatehouse-dev/gatehouse/ssf"
)

// scopeSSFManage is the scope a receiver's client needs for the stream
// management API (authserver.ScopeSSFManage; config does not import the
// server).
const scopeSSFManage = "ssf.manage"

// EnvGatewaySSFSecret holds the secret of the gateway's receiver client
// when the revocations block names no file.
const EnvGatewaySSFSecret = "GATEHOUSE_GATEWAY_SSF_CLIENT_SECRET"

// Revocations is the revocations block of the gateway file: the gateway
// follows the authorization server's Shared Signals stream and refuses
// revoked tokens within about a second (docs/revocation.md). Its client
// must be its own (client_credentials, scope ssf.manage, audience the
// issuer): stream cursors are per client, so two gateways need two clients.
type Revocations struct {
	ClientID         string        `yaml:"client_id"`
	ClientSecretFile string        `yaml:"client_secret_file"`
	MaxTokenLifetime time.Duration `yaml:"max_token_lifetime"` // the longest access-token lifetime; default 1h
	StaleAfter       time.Duration `yaml:"stale_after"`        // default 1m
	FailClosed       bool          `yaml:"fail_closed"`        // default false: keep serving while the stream is down
	// Delivery is DeliveryPoll (the default: the gateway long-polls the
	// authorization server, RFC 8936) or DeliveryPush (RFC 8935: the server
	// POSTs each event to PushURL, which the gateway serves on its admin
	// listener at PushPath).
	Delivery string `yaml:"delivery"`
	// PushURL is where the authorization server reaches the push endpoint:
	// PushPath on admin_listen, directly or through a proxy that terminates
	// TLS. Gatehouse's server requires https, or http on a loopback host.
	// If empty and admin_listen is a loopback address,
	// http://<admin_listen>/ssf/push.
	PushURL string `yaml:"push_url"`
}

// Delivery methods of the revocations block.
const (
	DeliveryPoll = "poll"
	DeliveryPush = "push"
)

// PushPath is where the gateway's admin listener serves the push endpoint
// of its receiver.
const PushPath = "/ssf/push"

// resolve checks the delivery settings against the gateway's admin
// listener and fills in the default PushURL.
func (r *Revocations) resolve(adminListen string) error {
	switch r.Delivery {
	case "", DeliveryPoll:
		if r.PushURL != "" {
			return errors.New("revocations: push_url needs delivery: push")
		}
		return nil
	case DeliveryPush:
	default:
		return fmt.Errorf("revocations: delivery %q: want %s or %s", r.Delivery, DeliveryPoll, DeliveryPush)
	}
	if adminListen == "" {
		return errors.New("revocations: delivery push needs admin_listen, where the push endpoint is served")
	}
	if r.PushURL != "" {
		return nil
	}
	host, _, err := net.SplitHostPort(adminListen)
	if err != nil || !isLoopback(host) {
		return fmt.Errorf("revocations: delivery push needs push_url, the URL at which the authorization server reaches %s on admin_listen %q", PushPath, adminListen)
	}
	r.PushURL = "http://" + adminListen + PushPath
	return nil
}

// isLoopback reports whether host names the loopback interface.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// Receiver builds the receiver the block describes, for issuer. tokenURL
// may be empty: it is then read from the issuer's discovery document. The
// caller runs it (Receiver.Run) for as long as the gateway lives, across
// reloads, and with delivery push serves its PushHandler at PushPath on the
// admin listener.
func (r *Revocations) Receiver(ctx context.Context, issuer, tokenURL string, logger *slog.Logger) (*ssf.Receiver, error) {
	if r.ClientID == "" {
		return nil, errors.New("revocations: client_id is required")
	}
	secret, err := readSecret(r.ClientSecretFile, EnvGatewaySSFSecret)
	if err != nil {
		return nil, fmt.Errorf("revocations: client secret: %w", err)
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	if tokenURL == "" {
		if tokenURL, err = discoverTokenURL(ctx, hc, issuer); err != nil {
			return nil, fmt.Errorf("revocations: %w", err)
		}
	}
	return ssf.New(ssf.Config{
		Issuer: issuer, Audience: r.ClientID,
		Token: &outbound.ClientCredentials{TokenURL: tokenURL, ClientID: r.ClientID, ClientSecret: secret,
			Scopes: []string{scopeSSFManage}, HTTPClient: hc},
		MaxTokenLifetime: r.MaxTokenLifetime, StaleAfter: r.StaleAfter, FailClosed: r.FailClosed,
		PushURL: r.PushURL,
		OnError: func(err error) { logger.Warn("revocation stream", "err", err) },
		OnStale: func(stale bool, last time.Time) {
			logger.Warn("revocation stream", "stale", stale, "last_contact", last, "fail_closed", r.FailClosed)
		},
	})
}

// discoverTokenURL reads token_endpoint from the issuer's OpenID Connect
// discovery document.
func discoverTokenURL(ctx context.Context, hc *http.Client, issuer string) (string, error) {
	meta, err := discover(ctx, hc, issuer)
	return meta.TokenEndpoint, err
}
