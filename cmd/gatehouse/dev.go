package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/devstack"
)

func newDevCommand() *cobra.Command {
	var o devstack.Options
	var seedFile string
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the whole Access Token pattern on loopback: authorization server, gateway, demo services",
		Long: `dev starts, in one process and on loopback, the authorization server
(127.0.0.1:9000) with its admin API (127.0.0.1:9001, a new token printed at
each start), the gateway (127.0.0.1:8080) and the demo services orders
(127.0.0.1:9101) and consumers (127.0.0.1:9102), with the embedded SQLite store
in the data folder. The gateway reaches the services over mutual TLS with
certificates from the built-in CA in DATA/ca (SPIFFE IDs
spiffe://gatehouse.internal/svc/<name>, renewed in process): orders admits only
the gateway, consumers the gateway and orders. It seeds users and clients from --seed, or from a built-in
demo seed with fresh random passwords, prints them with a few curl lines to
try, prints "ready" once every listener accepts, and stops on SIGINT/SIGTERM.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if seedFile != "" {
				seed, err := config.LoadSeed(seedFile)
				if err != nil {
					return err
				}
				o.Seed = seed
			}
			o.Logger = newLogger()
			stack, err := devstack.Start(cmd.Context(), o)
			if err != nil {
				return err
			}
			printBanner(cmd.OutOrStdout(), stack, seedFile, o.DataDir)
			<-cmd.Context().Done()
			fmt.Fprintln(cmd.OutOrStdout(), "shutting down")
			return stack.Close()
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.DataDir, "data", devstack.DefaultDataDir, "data folder: SQLite database, master key and CA")
	f.StringVar(&seedFile, "seed", "", "seed file of users and clients (default: built-in demo seed with random passwords)")
	f.StringVar(&o.GatewayAddr, "gateway-addr", devstack.DefaultGatewayAddr, "gateway listen address")
	f.StringVar(&o.AuthAddr, "authserver-addr", devstack.DefaultAuthAddr, "authorization server listen address")
	f.StringVar(&o.AdminAddr, "admin-addr", devstack.DefaultAdminAddr, "authorization server's admin API and /metrics listen address")
	f.StringVar(&o.OrdersAddr, "orders-addr", devstack.DefaultOrdersAddr, "orders service listen address")
	f.StringVar(&o.ConsumersAddr, "consumers-addr", devstack.DefaultConsumersAddr, "consumers service listen address")
	f.StringVar(&o.RevocationDelivery, "revocations", devstack.DeliveryPoll,
		"how the gateway and the services receive revocation events: poll (RFC 8936) or push (RFC 8935, to a loopback port of their own)")
	return cmd
}

func printBanner(w io.Writer, s *devstack.Stack, seedFile, dataDir string) {
	var b strings.Builder
	fmt.Fprintf(&b, "\nGatehouse dev — the Access Token pattern on loopback\n\n")
	fmt.Fprintf(&b, "  gateway               %s   (routes /api/orders, /api/admin/orders [role admin], /api/consumers)\n", s.GatewayURL)
	fmt.Fprintf(&b, "  in a browser          %s/api/consumers/me   (sign in at /login, sign out at /logout)\n", s.GatewayURL)
	fmt.Fprintf(&b, "  authorization server  %s   (discovery: %s/.well-known/openid-configuration)\n", s.IssuerURL, s.IssuerURL)
	fmt.Fprintf(&b, "  admin API             %s   (token: %s, also in %s; metrics: %s/metrics)\n", s.AdminURL, s.AdminToken, s.AdminTokenFile, s.AdminURL)
	fmt.Fprintf(&b, "  orders service        %s  (mTLS: admits svc/gateway)\n", s.OrdersURL)
	fmt.Fprintf(&b, "  consumers service     %s  (mTLS: admits svc/gateway, svc/orders)\n", s.ConsumersURL)
	fmt.Fprintf(&b, "  service identities    spiffe://%s/svc/<name>, CA in %s\n\n", s.CA.TrustDomain().Name(), filepath.Join(dataDir, "ca"))
	from := "built-in demo seed, new random passwords this run"
	if seedFile != "" {
		from = seedFile
	}
	fmt.Fprintf(&b, "Users (%s):\n", from)
	for _, u := range s.Seed.Users {
		fmt.Fprintf(&b, "  %-10s password %-28s roles %s\n", u.Username, u.Password, strings.Join(u.Roles, ","))
	}
	fmt.Fprintf(&b, "Clients:\n")
	for _, c := range s.Seed.Clients {
		fmt.Fprintf(&b, "  %-10s secret %s  grants %s\n", c.ID, c.Secret, strings.Join(c.Grants, ","))
	}
	if len(s.Seed.Users) > 1 {
		a, o := s.Seed.Users[0], s.Seed.Users[1]
		fmt.Fprintf(&b, "\nTry:\n")
		fmt.Fprintf(&b, "  curl -u %s:%s %s/api/orders -H 'Content-Type: application/json' -d '{\"item\":\"pizza\",\"quantity\":2}'\n", a.Username, a.Password, s.GatewayURL)
		fmt.Fprintf(&b, "  curl -u %s:%s %s/api/orders\n", a.Username, a.Password, s.GatewayURL)
		fmt.Fprintf(&b, "  curl -u %s:%s %s/api/orders/<id from above>      # 403: not %s's order\n", o.Username, o.Password, s.GatewayURL, o.Username)
		if len(s.Seed.Clients) > 0 {
			c := s.Seed.Clients[0]
			fmt.Fprintf(&b, "  TOKEN=$(curl -s -u %s:%s -d grant_type=password -d username=%s -d password=%s %s | jq -r .access_token)\n",
				c.ID, c.Secret, a.Username, a.Password, s.TokenURL)
			fmt.Fprintf(&b, "  curl -H \"Authorization: Bearer $TOKEN\" %s/api/consumers/me\n", s.GatewayURL)
		}
		fmt.Fprintf(&b, "  gatehouse user sessions %s --admin %s --admin-token-file %s\n", a.Username, s.AdminURL, s.AdminTokenFile)
	}
	fmt.Fprintf(&b, "\nready: every listener accepts connections (Ctrl-C to stop)\n")
	io.WriteString(w, b.String())
}
