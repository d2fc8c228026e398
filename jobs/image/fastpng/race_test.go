//go:build race

package fastpng

// raceEnabled: under the race detector sync.Pool drops a quarter of what
// is put back, at random, so a count of allocations is not the encoder's.
const raceEnabled = true
