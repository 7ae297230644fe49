package e2e

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel kill the child if the test process dies
// without stopping it (a panic, a timeout, SIGKILL): no orphan keeps a
// port or a database connection. t.Cleanup stops it gracefully otherwise.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
