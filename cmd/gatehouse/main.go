// Command gatehouse runs Gatehouse: `gatehouse dev` starts the whole Access
// Token pattern on loopback; `gatehouse authserver` and `gatehouse gateway`
// run the parts in production; `gatehouse user` and `gatehouse client`
// administer the store. Run `gatehouse help` for the commands.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCommand().ExecuteContext(ctx)
	stop()
	if err != nil {
		os.Exit(1)
	}
}
