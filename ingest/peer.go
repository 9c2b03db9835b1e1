package ingest

import "sync"

// peer is what a WHIP publish (Session) and a WHEP playback (Viewer) share:
// who they are and how their life ends. end may be called from anywhere
// (pion callbacks too) and never blocks: it records the first reason and
// closes ended, which the owner's goroutine watches to tear down; the
// owner closes done once everything is gone.
type peer struct {
	id   string // the session id of the resource URL
	name string // the stream

	endOnce sync.Once
	endErr  error
	ended   chan struct{} // closed by end
	done    chan struct{} // closed by the owner once torn down
	onEnd   func()        // run once by end, e.g. a context's cancel; may be nil
}

func newPeer(name string, onEnd func()) peer {
	return peer{id: newID(), name: name, ended: make(chan struct{}), done: make(chan struct{}), onEnd: onEnd}
}

// ID returns the session id used in the resource URL.
func (p *peer) ID() string { return p.id }

// Stream returns the name of the stream published or played.
func (p *peer) Stream() string { return p.name }

// Done is closed once the session has ended and cleaned up.
func (p *peer) Done() <-chan struct{} { return p.done }

// Err returns why the session ended (ErrSessionClosed for Close), or nil
// while it runs.
func (p *peer) Err() error {
	select {
	case <-p.done:
		return p.endErr
	default:
		return nil
	}
}

// Close ends the session (the resource's DELETE) and waits until it has
// cleaned up. Safe to call more than once.
func (p *peer) Close() {
	p.end(ErrSessionClosed)
	<-p.done
}

// end asks the owner to tear down, with err as the reason unless one was
// given before. It never blocks.
func (p *peer) end(err error) {
	p.endOnce.Do(func() {
		p.endErr = err
		close(p.ended)
		if p.onEnd != nil {
			p.onEnd()
		}
	})
}
