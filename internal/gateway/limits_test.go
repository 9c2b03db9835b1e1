package gateway

import (
	"testing"

	"github.com/whipcast/whipcast/config"
	"github.com/whipcast/whipcast/internal/admission"
)

// TestPublisherCostByAudioCodec: limits.publisher_cost 0 (the default)
// estimates a new publisher by what the gateway does to its audio; a
// configured cost is taken as it is.
func TestPublisherCostByAudioCodec(t *testing.T) {
	for _, tc := range []struct {
		doc  string
		want float64
	}{
		{"", admission.DefaultPublisherCost},
		{"audio:\n  codec: opus\n", admission.PassthroughPublisherCost},
		{"audio:\n  codec: opus\nlimits:\n  publisher_cost: 0.05\n", 0.05},
		{"limits:\n  publisher_cost: 0.2\n", 0.2},
	} {
		cfg, err := config.Load([]byte(tc.doc), nil)
		if err != nil {
			t.Fatalf("%q: %v", tc.doc, err)
		}
		if got := publisherCost(cfg); got != tc.want {
			t.Errorf("%q: publisher cost %g, want %g", tc.doc, got, tc.want)
		}
	}
}
