// Package state is the one life cycle every output shows (RTMP
// destinations, recordings, origin publishes), in the API, the events and
// the metrics:
//
//	starting → live ⇄ retrying → failed
//	              ↘      ↓
//	               stopped
//
// Starting: connecting or opening, nothing delivered yet. Live: every frame
// or segment goes out. Retrying: the destination refused or broke, or
// storage does not keep up; the output tries again (a reconnect, the next
// segment) and says why. Failed: it gave up (a retry limit reached, a
// destination that cannot take the stream); only a new start brings it
// back. Stopped: ended on purpose (the stream ended, an API stop).
package state

import "fmt"

// State is where an output is in its life.
type State int

// The states, in the order an output normally meets them.
const (
	Starting State = iota + 1
	Live
	Retrying
	Failed
	Stopped
)

// String is the state's name as the API, events and metrics show it.
func (s State) String() string {
	switch s {
	case Starting:
		return "starting"
	case Live:
		return "live"
	case Retrying:
		return "retrying"
	case Failed:
		return "failed"
	case Stopped:
		return "stopped"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// MarshalText shows a State by name in JSON.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a State by name, as MarshalText writes it (an API
// client's view of a recording or an output).
func (s *State) UnmarshalText(b []byte) error {
	for _, v := range All {
		if v.String() == string(b) {
			*s = v
			return nil
		}
	}
	return fmt.Errorf("state: unknown state %q", b)
}

// All lists every state, for a metric that shows one series per state.
var All = []State{Starting, Live, Retrying, Failed, Stopped}
