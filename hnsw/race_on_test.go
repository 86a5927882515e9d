//go:build race

package hnsw

// raceEnabled lets the heaviest recall tests skip under the race detector,
// where they are 20x slower and test nothing about concurrency.
const raceEnabled = true
