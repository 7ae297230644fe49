package main

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/gatehouse-dev/gatehouse/internal/ca"
	"github.com/gatehouse-dev/gatehouse/internal/keyring"
)

// caFlags are the flags every `gatehouse ca` command shares.
type caFlags struct {
	data    string
	keyFile string
}

// config returns the CA's Config: its folder DATA/ca and the master key from
// --key-file, the environment, or DATA/master.key (created if create).
func (f *caFlags) config(create bool) (ca.Config, error) {
	var kr *keyring.Keyring
	var err error
	switch env, ok, envErr := keyring.FromEnv(); {
	case f.keyFile != "":
		kr, err = keyring.LoadFile(f.keyFile, false)
	case ok:
		kr, err = env, envErr
	default:
		kr, err = keyring.LoadFile(filepath.Join(f.data, "master.key"), create)
	}
	if err != nil {
		return ca.Config{}, err
	}
	return ca.Config{Dir: filepath.Join(f.data, "ca"), Keyring: kr}, nil
}

func newCACommand() *cobra.Command {
	var f caFlags
	cmd := &cobra.Command{Use: "ca", Short: "The built-in CA for service certificates (init, issue, rotate, bundle, join-token)"}
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.data, "data", ".gatehouse", "data folder: the CA lives in DATA/ca, the master key in DATA/master.key")
	pf.StringVar(&f.keyFile, "key-file", "", "master key file that seals the CA's keys (default: $"+keyring.EnvMasterKey+", else DATA/master.key)")
	cmd.AddCommand(newCAInitCommand(&f), newCAIssueCommand(&f), newCARotateCommand(&f), newCABundleCommand(&f),
		newCAJoinTokenCommand())
	return cmd
}

func newCAInitCommand(f *caFlags) *cobra.Command {
	var td string
	var leafTTL time.Duration
	cmd := &cobra.Command{
		Use: "init --trust-domain TD", Short: "Create the CA and its first root (its key sealed with the master key)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			trustDomain, err := spiffeid.TrustDomainFromString(td)
			if err != nil {
				return fmt.Errorf("--trust-domain: %w", err)
			}
			cfg, err := f.config(true)
			if err != nil {
				return err
			}
			cfg.TrustDomain, cfg.LeafTTL = trustDomain, leafTTL
			c, err := ca.Init(cfg)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "CA for trust domain %s created in %s (certificates live %s)\n", c.TrustDomain().Name(), cfg.Dir, c.LeafTTL())
			return nil
		},
	}
	cmd.Flags().StringVar(&td, "trust-domain", "", "SPIFFE trust domain, such as prod.example.com")
	cmd.Flags().DurationVar(&leafTTL, "leaf-ttl", ca.DefaultLeafTTL, "lifetime of issued certificates")
	cmd.MarkFlagRequired("trust-domain")
	return cmd
}

func newCAIssueCommand(f *caFlags) *cobra.Command {
	var name, out string
	cmd := &cobra.Command{
		Use: "issue --name NAME --out DIR", Short: "Issue a service certificate: writes cert.pem, key.pem (0600) and bundle.pem", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.config(false)
			if err != nil {
				return err
			}
			c, err := ca.Open(cfg)
			if err != nil {
				return err
			}
			svid, err := c.IssueFiles(name, out)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "issued %s, valid until %s, in %s (%s, %s, %s)\n", svid.ID,
				svid.Certificates[0].NotAfter.UTC().Format(time.RFC3339), out, ca.CertFile, ca.KeyFile, ca.BundleFile)
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "service name: the SPIFFE ID is spiffe://<trust-domain>/svc/<name>")
	cmd.Flags().StringVar(&out, "out", "", "folder to write the files to")
	cmd.MarkFlagRequired("name")
	cmd.MarkFlagRequired("out")
	return cmd
}

func newCARotateCommand(f *caFlags) *cobra.Command {
	var in time.Duration
	cmd := &cobra.Command{
		Use: "rotate", Short: "Publish a new root now; it signs after --activate-in, the old root leaves the bundle a leaf TTL later", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.config(false)
			if err != nil {
				return err
			}
			c, err := ca.Open(cfg)
			if err != nil {
				return err
			}
			at := time.Now().Add(in)
			if _, err := c.Rotate(at); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "new root published; it signs from %s; the old root leaves the bundle at %s\n",
				at.UTC().Format(time.RFC3339), at.Add(c.LeafTTL()).UTC().Format(time.RFC3339))
			return nil
		},
	}
	cmd.Flags().DurationVar(&in, "activate-in", time.Hour, "time for every service to refresh its bundle before the new root signs")
	return cmd
}

func newCABundleCommand(f *caFlags) *cobra.Command {
	return &cobra.Command{
		Use: "bundle", Short: "Print the trust bundle (PEM)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.config(false)
			if err != nil {
				return err
			}
			c, err := ca.Open(cfg)
			if err != nil {
				return err
			}
			b, err := c.Bundle()
			if err != nil {
				return err
			}
			pem, err := b.Marshal()
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(pem)
			return err
		},
	}
}
