package gateway

import "runtime/debug"

// DefaultGCPercent is the garbage collector's target growth when the
// operator has not set GOGC. A gateway's live heap is small (pooled Lua
// states, keys, caches: a few MB), so Go's default of 100 collects many
// times a second under load, and scanning the pointer-dense Lua states
// each time cost about a third of the CPU of a token request (measured
// with scripts/load, see BENCHMARKS.md). At 400 the peak RSS under that
// load goes from about 21 to 33 MB.
const DefaultGCPercent = 400

// TuneGC sets the collector's target to DefaultGCPercent unless GOGC is
// set, and reports whether it did. GOGC and GOMEMLIMIT keep their usual
// meaning: a container with a memory limit should set GOMEMLIMIT a little
// under it.
func TuneGC(getenv func(string) string) bool {
	if getenv("GOGC") != "" {
		return false
	}
	debug.SetGCPercent(DefaultGCPercent)
	return true
}
