//go:build race

package webserver_test

// raceEnabled: the race detector multiplies memory, so RSS is not bounded then.
const raceEnabled = true
