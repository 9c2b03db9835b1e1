package media

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when a goroutine they started is still
// running once they are done (issue 14: every goroutine has an owner that
// stops and joins it).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
