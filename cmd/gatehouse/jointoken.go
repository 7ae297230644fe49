package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse-dev/gatehouse/authserver"
	"github.com/gatehouse-dev/gatehouse/internal/adminapi"
)

// newCAJoinTokenCommand is `gatehouse ca join-token`: it acts on a store
// or through a running server's admin API, as the client commands do, so
// its flags are theirs, not the CA's.
func newCAJoinTokenCommand() *cobra.Command {
	var af adminFlags
	var in adminapi.NewJoinToken
	cmd := &cobra.Command{
		Use:   "join-token --name NAME [--ttl 1h]",
		Short: "Print a one-time token with which service NAME gets its first certificate from the issuance endpoint",
		Long: `join-token creates a one-time join token for the service NAME, which must be
a registered client allowed client_credentials. The service presents it as
"Authorization: Bearer <token>" at the issuance endpoint (pki.HTTPIssuer's
JoinToken) and gets a certificate for spiffe://<trust-domain>/svc/NAME; a
second use is refused. The token is printed once and stored only as a keyed
hash. See docs/mtls.md.`,
		Args: cobra.NoArgs,
		RunE: af.run(true, func(c *cobra.Command, svc adminapi.Service, _ []string) error {
			jt, err := svc.CreateJoinToken(c.Context(), in)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.ErrOrStderr(), "join token for %s, usable once until %s:\n", jt.Name, jt.ExpiresAt.Format(time.RFC3339))
			fmt.Fprintln(c.OutOrStdout(), jt.Token)
			return nil
		}),
	}
	// Local flags: they shadow the ca command's --key-file, which means the
	// same master key here.
	f := cmd.Flags()
	f.StringVar(&af.store, "store", "sqlite:.gatehouse/gatehouse.db", "store: sqlite:PATH or postgres:DSN (unless --admin)")
	f.StringVar(&af.keyFile, "key-file", "", "master key file (default: master.key beside a SQLite store, else $GATEHOUSE_MASTER_KEY)")
	f.StringVar(&af.admin, "admin", "", "use a running server's admin API at this URL (e.g. http://127.0.0.1:9001) instead of --store")
	f.StringVar(&af.adminTokenFile, "admin-token-file", "", "file holding the admin token (default: $GATEHOUSE_ADMIN_TOKEN)")
	f.StringVar(&in.Name, "name", "", "service name: a client ID; the certificate's SPIFFE ID is spiffe://<trust-domain>/svc/NAME")
	f.DurationVar((*time.Duration)(&in.TTL), "ttl", authserver.DefaultJoinTokenTTL, "how long the token may be used (at most 168h)")
	cmd.MarkFlagRequired("name")
	return cmd
}
