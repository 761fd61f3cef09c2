package gateway

import (
	"runtime/debug"
	"testing"
)

func TestTuneGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))

	env := map[string]string{"GOGC": "50"}
	if TuneGC(func(k string) string { return env[k] }) {
		t.Error("TuneGC changed the target although GOGC is set")
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("with GOGC set, the target is %d, want it left at 100", got)
	}

	if !TuneGC(func(string) string { return "" }) {
		t.Error("TuneGC left the target although GOGC is not set")
	}
	if got := debug.SetGCPercent(100); got != DefaultGCPercent {
		t.Errorf("without GOGC, the target is %d, want %d", got, DefaultGCPercent)
	}
}
