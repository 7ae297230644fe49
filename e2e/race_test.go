//go:build race

package e2e

// raceEnabled: the tests run with -race, and so do the processes they start.
const raceEnabled = true
