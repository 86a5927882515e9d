//go:build !amd64

package kernel

// hasAVX2FMA: no assembly kernel outside amd64.
var hasAVX2FMA = false

func dotU8(a []float32, c []uint8) float32 { return dotU8Go(a, c) }

// hasVNNI: no assembly kernel outside amd64.
var hasVNNI = false
