//go:build race

package image

// raceEnabled: the race detector's shadow memory makes a process's
// resident size no measure of what the code allocates.
const raceEnabled = true
