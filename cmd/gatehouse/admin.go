package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/gatehouse-dev/gatehouse/internal/accounts"
	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/keyring"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// storeFlags are the flags of the commands that work on a store directly.
type storeFlags struct {
	store   string
	keyFile string
}

func (f *storeFlags) register(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&f.store, "store", "sqlite:.gatehouse/gatehouse.db", "store: sqlite:PATH or postgres:DSN")
	cmd.PersistentFlags().StringVar(&f.keyFile, "key-file", "", "master key file, for client secrets (default: master.key beside a SQLite store, else $"+keyring.EnvMasterKey+")")
}

func (f *storeFlags) open(ctx context.Context) (store.Store, error) {
	return config.OpenStore(ctx, f.store)
}

// keyring finds the master key: --key-file, the environment, or master.key
// beside a SQLite database (where `gatehouse dev` keeps it).
func (f *storeFlags) keyring() (*keyring.Keyring, error) {
	if f.keyFile != "" {
		return keyring.LoadFile(f.keyFile, false)
	}
	if kr, ok, err := keyring.FromEnv(); ok {
		return kr, err
	}
	if path, ok := strings.CutPrefix(f.store, "sqlite:"); ok {
		return keyring.LoadFile(filepath.Join(filepath.Dir(path), "master.key"), false)
	}
	return nil, fmt.Errorf("no master key: use --key-file or set %s", keyring.EnvMasterKey)
}

func newUserCommand() *cobra.Command {
	var sf storeFlags
	var roles []string
	cmd := &cobra.Command{Use: "user", Short: "Manage users (add, list, disable, passwd)"}
	sf.register(cmd)
	manager := func(ctx context.Context) (*accounts.Manager, func(), error) {
		st, err := sf.open(ctx)
		if err != nil {
			return nil, nil, err
		}
		return &accounts.Manager{Store: st}, func() { st.Close() }, nil
	}
	add := &cobra.Command{
		Use: "add USERNAME", Short: "Add a user; the password is read from a prompt or from stdin", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, err := readPassword(cmd)
			if err != nil {
				return err
			}
			m, done, err := manager(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			u, err := m.AddUser(cmd.Context(), args[0], pw, roles)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "added user %s (sub %s, roles %s)\n", u.Username, u.ID, strings.Join(u.Roles, ","))
			return nil
		},
	}
	add.Flags().StringSliceVar(&roles, "roles", nil, "roles, comma-separated")
	list := &cobra.Command{
		Use: "list", Short: "List users", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, done, err := manager(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			users, err := m.Store.ListUsers(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "USERNAME\tSUBJECT\tROLES\tDISABLED")
			for _, u := range users {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%v\n", u.Username, u.ID, strings.Join(u.Roles, ","), u.Disabled)
			}
			return tw.Flush()
		},
	}
	disable := &cobra.Command{
		Use: "disable USERNAME", Short: "Disable a user: no more logins or refreshes", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, done, err := manager(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			if err := m.SetDisabled(cmd.Context(), args[0], true); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "disabled user %s\n", args[0])
			return nil
		},
	}
	passwd := &cobra.Command{
		Use: "passwd USERNAME", Short: "Set a user's password, read from a prompt or from stdin", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, err := readPassword(cmd)
			if err != nil {
				return err
			}
			m, done, err := manager(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			if err := m.SetPassword(cmd.Context(), args[0], pw); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "password of %s changed\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(add, list, disable, passwd)
	return cmd
}

// readPassword prompts twice without echo on a terminal; otherwise it reads
// the first line of stdin. Passwords never come from argv.
func readPassword(cmd *cobra.Command) (string, error) {
	in := cmd.InOrStdin()
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(cmd.ErrOrStderr(), "Password: ")
		a, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(cmd.ErrOrStderr())
		if err != nil {
			return "", err
		}
		fmt.Fprint(cmd.ErrOrStderr(), "Again: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(cmd.ErrOrStderr())
		if err != nil {
			return "", err
		}
		if string(a) != string(b) {
			return "", errors.New("the passwords differ")
		}
		return string(a), nil
	}
	line, err := bufio.NewReader(io.LimitReader(in, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("no password on stdin")
	}
	return line, nil
}

func newClientCommand() *cobra.Command {
	var sf storeFlags
	var spec accounts.ClientSpec
	cmd := &cobra.Command{Use: "client", Short: "Manage OAuth clients (add, list)"}
	sf.register(cmd)
	add := &cobra.Command{
		Use: "add CLIENT_ID", Short: "Register a client; a generated secret is printed once", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			kr, err := sf.keyring()
			if err != nil {
				return err
			}
			st, err := sf.open(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			spec.ID = args[0]
			m := &accounts.Manager{Store: st, Secrets: kr.Hasher(keyring.PurposeClientSecret)}
			c, secret, err := m.AddClient(cmd.Context(), spec)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "added client %s (grants %s)\n", c.ID, strings.Join(c.Grants, ","))
			if secret != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "client secret (shown once, stored only hashed): %s\n", secret)
			}
			return nil
		},
	}
	f := add.Flags()
	f.StringSliceVar(&spec.Grants, "grants", []string{"client_credentials"}, "allowed grant types, comma-separated")
	f.StringSliceVar(&spec.Scopes, "scopes", nil, "allowed scopes, comma-separated")
	f.StringSliceVar(&spec.RedirectURIs, "redirect-uris", nil, "redirect URIs, comma-separated")
	f.StringSliceVar(&spec.Audience, "audience", nil, "audience of its access tokens (default: the server's)")
	f.BoolVar(&spec.Public, "public", false, "a public client (no secret)")
	f.StringVar(&spec.AuthMethod, "auth-method", "", "token endpoint authentication: client_secret_basic (default), client_secret_post, or none (a public client)")
	f.StringVar(&spec.AccessTokenFormat, "access-token-format", "jwt", "format of its access tokens: jwt or opaque")
	f.DurationVar(&spec.AccessTokenTTL, "access-token-ttl", 0, "lifetime of its access tokens (default: the server's)")
	f.DurationVar(&spec.RefreshTokenTTL, "refresh-token-ttl", 0, "how long its refresh tokens may go unused (default: the server's)")
	f.DurationVar(&spec.RefreshAbsoluteTTL, "refresh-absolute-ttl", 0, "how long its sessions may last from the login (default: the server's)")
	f.StringSliceVar(&spec.ExchangeAudiences, "exchange-audiences", nil, "audiences it may request by token exchange, comma-separated")
	list := &cobra.Command{
		Use: "list", Short: "List clients", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := sf.open(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			clients, err := st.ListClients(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "CLIENT_ID\tTYPE\tGRANTS\tSCOPES\tTOKENS")
			for _, c := range clients {
				kind := "confidential"
				if c.Public {
					kind = "public"
				}
				format := c.AccessTokenFormat
				if format == "" {
					format = store.FormatJWT
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.ID, kind, strings.Join(c.Grants, ","), strings.Join(c.Scopes, ","), format)
			}
			return tw.Flush()
		},
	}
	cmd.AddCommand(add, list)
	return cmd
}
