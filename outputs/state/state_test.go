package state

import (
	"encoding/json"
	"testing"
)

func TestStateNames(t *testing.T) {
	want := []string{"starting", "live", "retrying", "failed", "stopped"}
	for i, s := range All {
		if s.String() != want[i] {
			t.Errorf("%d: %q, want %q", i, s, want[i])
		}
	}
	b, err := json.Marshal(map[string]State{"state": Retrying})
	if err != nil || string(b) != `{"state":"retrying"}` {
		t.Fatalf("JSON %s, %v", b, err)
	}
	var back map[string]State
	if err := json.Unmarshal(b, &back); err != nil || back["state"] != Retrying {
		t.Fatalf("JSON back: %v, %v", back, err)
	}
	if err := json.Unmarshal([]byte(`{"state":"sleeping"}`), &back); err == nil {
		t.Fatal("an unknown state name must not decode")
	}
	if State(0).String() != "State(0)" {
		t.Error("the zero State must not pass for a real one")
	}
}
