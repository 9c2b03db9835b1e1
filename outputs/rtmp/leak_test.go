package rtmp

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when a goroutine they started is still
// running once they are done (issue 14: every goroutine has an owner that
// stops and joins it). No exceptions: gortmplib bounds the whole setup by a
// context, so even a server that goes silent after the handshake leaves
// nothing behind once dialRTMP has returned.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
