package config

import (
	"strings"
	"testing"
)

func TestRuntimeGOGC(t *testing.T) {
	c, err := Load(nil, nil)
	if err != nil || c.Runtime.GOGC != 25 {
		t.Fatalf("default: %v, gogc %d, want 25", err, c.Runtime.GOGC)
	}
	c, err = Load([]byte("runtime: {gogc: 100}\n"), []string{"WHIPCAST_RUNTIME_GOGC=50"})
	if err != nil || c.Runtime.GOGC != 50 {
		t.Fatalf("environment override: %v, gogc %d, want 50", err, c.Runtime.GOGC)
	}
	for _, doc := range []string{"runtime: {gogc: 5}\n", "runtime: {gogc: 0}\n", "runtime: {gogc: 5000}\n"} {
		if _, err := Load([]byte(doc), nil); err == nil || !strings.Contains(err.Error(), "runtime.gogc") {
			t.Errorf("%q: %v, want a runtime.gogc error", doc, err)
		}
	}
}
