package main

import (
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"

	"github.com/spf13/cobra"
)

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "gatehouse",
		Short:         "The microservices Access Token pattern: authorization server, gateway, service library",
		SilenceUsage:  true,
		SilenceErrors: false,
	}
	root.AddCommand(newDevCommand(), newAuthServerCommand(), newGatewayCommand(), newDemoCommand(),
		newUserCommand(), newClientCommand(), newKeysCommand(), newCACommand(), newVersionCommand())
	return root
}

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = ""

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			v := version
			if v == "" {
				v = "(devel)"
				if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
					v = bi.Main.Version
				}
			}
			fmt.Fprintln(cmd.OutOrStdout(), "gatehouse", v)
		},
	}
}

// newLogger logs text lines to stderr.
func newLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
}
