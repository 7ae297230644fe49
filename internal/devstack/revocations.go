package devstack

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/gatehouse-dev/gatehouse/authserver"
	"github.com/gatehouse-dev/gatehouse/internal/accounts"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/outbound"
	"github.com/gatehouse-dev/gatehouse/ssf"
)

// ConsumersPart names the consumers service among the parts of the stack.
const ConsumersPart = "consumers"

// receiverParts are the parts of the stack that follow the authorization
// server's Shared Signals stream and refuse revoked tokens: the gateway and
// both demo services.
var receiverParts = []string{GatewayClientID, OrdersClientID, ConsumersPart}

// ReceiverClientID is the client the part uses for its SSF stream:
// client_credentials only, scope ssf.manage, audience the issuer. It is not
// the part's other client, whose tokens have other audiences.
func ReceiverClientID(part string) string { return part + "-ssf" }

// seedReceivers registers the receiver client of every part with a fresh
// secret and returns the secrets by part.
func (s *Stack) seedReceivers(ctx context.Context, m *accounts.Manager) (map[string]string, error) {
	secrets := make(map[string]string, len(receiverParts))
	for _, part := range receiverParts {
		_, secret, err := m.PutClient(ctx, accounts.ClientSpec{ID: ReceiverClientID(part),
			Grants: []string{oauth.GrantClientCredentials}, Scopes: []string{authserver.ScopeSSFManage},
			Audience: []string{s.IssuerURL}})
		if err != nil {
			return nil, err
		}
		secrets[part] = secret
	}
	return secrets, nil
}

// Revocation delivery methods of Options.RevocationDelivery.
const (
	DeliveryPoll = "poll"
	DeliveryPush = "push"
)

// pushPath is below the receivers' push listener; each part's endpoint is
// pushPath/<part>.
const pushPath = "/ssf/push"

// checkDelivery accepts the values of Options.RevocationDelivery.
func checkDelivery(d string) error {
	if d != "" && d != DeliveryPoll && d != DeliveryPush {
		return fmt.Errorf("revocation delivery %q: want %s or %s", d, DeliveryPoll, DeliveryPush)
	}
	return nil
}

// pushAddr is the address of the receivers' push listener: a free port on
// loopback, where only the authorization server in this process calls; ""
// when the receivers poll.
func pushAddr(o Options) string {
	if o.RevocationDelivery != DeliveryPush {
		return ""
	}
	return "127.0.0.1:0"
}

// pushHandler serves each part's push endpoint at pushPath/<part>. A
// service of a user's would serve its receiver's PushHandler on a listener
// of its own, reachable by the authorization server; the dev stack shares
// one for its three parts.
func (s *Stack) pushHandler() http.Handler {
	mux := http.NewServeMux()
	for part, r := range s.Receivers {
		mux.Handle(pushPath+"/"+part, r.PushHandler())
	}
	return mux
}

// newReceivers builds the receiver of every part into s.Receivers. It does
// no I/O; runReceivers starts them.
func (s *Stack) newReceivers(o Options, secrets map[string]string) error {
	s.Receivers = make(map[string]*ssf.Receiver, len(receiverParts))
	ttl := s.longestAccessTokenTTL(o)
	for _, part := range receiverParts {
		logger := o.Logger.With("component", part, "ssf_client", ReceiverClientID(part))
		r, err := ssf.New(ssf.Config{
			Issuer: s.IssuerURL, Audience: ReceiverClientID(part),
			Token: &outbound.ClientCredentials{TokenURL: s.TokenURL, ClientID: ReceiverClientID(part),
				ClientSecret: secrets[part], Scopes: []string{authserver.ScopeSSFManage}},
			MaxTokenLifetime: ttl,
			PushURL:          s.pushURL(part),
			OnError:          func(err error) { logger.Warn("revocation stream", "err", err) },
			OnStale: func(stale bool, last time.Time) {
				level := slog.LevelInfo
				if stale {
					level = slog.LevelWarn
				}
				logger.Log(context.Background(), level, "revocation stream", "stale", stale, "last_contact", last)
			},
		})
		if err != nil {
			return err
		}
		s.Receivers[part] = r
	}
	return nil
}

// pushURL is the push endpoint of part, or "" when the receivers poll.
func (s *Stack) pushURL(part string) string {
	if s.PushURL == "" {
		return ""
	}
	return s.PushURL + "/" + part
}

// longestAccessTokenTTL is the longest lifetime of an access token the
// stack's authorization server mints: the server's default or a seed
// client's own, whichever is longer. Token exchange never extends a token's
// lifetime.
func (s *Stack) longestAccessTokenTTL(o Options) time.Duration {
	ttl := o.AccessTokenTTL
	if ttl <= 0 {
		ttl = 5 * time.Minute // the authorization server's default
	}
	for _, c := range s.Seed.Clients {
		ttl = max(ttl, c.AccessTokenTTL)
	}
	return ttl
}

// runReceivers follows the streams until the stack stops.
func (s *Stack) runReceivers(ctx context.Context) {
	for _, r := range s.Receivers {
		s.wg.Go(func() { r.Run(ctx) })
	}
}
