//go:build !amd64

package modality

func dotU8(a []float32, c []uint8) float32 { return dotU8Go(a, c) }
