//go:build !unix

package pki_test

import "time"

// cpuTime is not measured here; the cpu-µs/op metric reads 0.
func cpuTime() time.Duration { return 0 }
