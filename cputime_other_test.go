//go:build !unix

package mmdb

import "time"

// processCPU is 0 where the process's CPU time is not at hand; the
// benchmarks then report no CPU figure.
func processCPU() time.Duration { return 0 }
