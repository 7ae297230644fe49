//go:build !linux

package e2e

import "os/exec"

// dieWithParent does nothing here: only Linux has a parent-death signal.
// t.Cleanup stops every child.
func dieWithParent(*exec.Cmd) {}
