package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/whipcast/whipcast/stages/codec"
)

// roomResult is what browser/room.mjs prints.
type roomResult struct {
	OK    bool `json:"ok"`
	Pages map[string]struct {
		Published bool     `json:"published"`
		Error     *string  `json:"error"`
		Refusals  []string `json:"refusals"`
		Watching  map[string]struct {
			Playing  bool `json:"playing"`
			Width    int  `json:"width"`
			Advanced bool `json:"advanced"`
		} `json:"watching"`
	} `json:"pages"`
	Composite *struct {
		Playing bool    `json:"playing"`
		Start   float64 `json:"start"`
		End     float64 `json:"end"`
		Width   int     `json:"width"`
		Error   *string `json:"error"`
	} `json:"composite"`
	Error *string `json:"error"`
}

// TestE2EBrowserRoom: two headless Chromium pages join one room through the
// embedded /room page, over the room signalling socket: each publishes its
// fake camera and microphone and plays the other's picture. The room has a
// composite, which a third page plays with hls.js at its configured size.
// The publish token is required, as for WHIP.
func TestE2EBrowserRoom(t *testing.T) {
	node := needBrowser(t)
	if !codec.Available {
		t.Skip("no codec support in this build")
	}
	checkNoLeaks(t)
	g := startGateway(t, "auth:\n  publish_token: s3cret\n  admin_token: adm1n\n")
	base := "http://" + g.HTTPAddr().String()
	req, _ := http.NewRequest("POST", base+"/v1/rooms", strings.NewReader(`{"name":"meet","composite":{"width":640,"height":360}}`))
	req.Header.Set("Authorization", "Bearer adm1n")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("POST /v1/rooms: %d", res.StatusCode)
	}
	shots := os.Getenv("WHIPCAST_UI_SHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	// The pages pass the token in the socket URL (?token=), as a browser must.
	cmd := exec.CommandContext(ctx, node, "room.mjs", "--base", base, "--room", "meet", "--names", "alice,bob",
		"--shots", shots, "--chromium", chromiumPath, "--token", "s3cret")
	cmd.Dir = "browser"
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	var r roomResult
	if jerr := json.Unmarshal(out, &r); err != nil || jerr != nil {
		t.Fatalf("driver failed: %v %s", err, out)
	}
	t.Logf("room pages: %+v; composite: %+v; screenshots in %s", r.Pages, r.Composite, shots)
	if r.Error != nil {
		t.Errorf("error: %s", *r.Error)
	}
	if !r.OK {
		t.Errorf("browser room failed: %s", out)
	}
	if r.Composite == nil || r.Composite.Width != 640 {
		t.Errorf("composite in the player: %+v", r.Composite)
	}
}
