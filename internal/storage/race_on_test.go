//go:build race

package storage

// raceEnabled lets tests that count allocations, or that are slow and
// test nothing about concurrency, cut down under the race detector (which
// allocates for itself and empties sync.Pools at random).
const raceEnabled = true
