//go:build !unix

package main

import "time"

// processCPU is not measured here: CPU/req and cores used read 0.
func processCPU() time.Duration { return 0 }
