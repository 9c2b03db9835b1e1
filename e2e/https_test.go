package e2e

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bluenviron/gohlslib/v2"

	"github.com/whipcast/whipcast/internal/testca"
)

// TestE2EHTTPSBrowserPublishSIGHUPReload: the real gateway binary serves
// HTTPS with a certificate of a test CA; Chromium, trusting that
// certificate's key, publishes its camera from the gateway's own /publish
// page over https, and Go's HLS client, trusting the CA, plays the stream
// over https. Then, with the publish live, the certificate files are
// replaced and the process gets SIGHUP: a new TLS connection sees the new
// certificate, a connection opened before still works, and the publish goes
// on in the same session (frames keep arriving, no resume). A SIGHUP with a
// broken pair keeps the new certificate and says why in the log.
func TestE2EHTTPSBrowserPublishSIGHUPReload(t *testing.T) {
	node := needBrowser(t)
	bin, err := buildGateway()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ca := testca.New(t)
	first := ca.Issue(t, dir, "server", "127.0.0.1")
	next := ca.Issue(t, dir, "next", "127.0.0.1") // renamed over server.* at the reload
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	base := "https://" + addr
	cfg := fmt.Sprintf(`http:
  addr: %s
  tls:
    cert: %s
    key: %s
webrtc:
  port: %d
  listen_ip: 127.0.0.1
  reconnect_window: 0s
storage:
  path: %s
  spool_dir: %s
limits:
  max_cpu: 0
  max_machine_cpu: 0
  max_lag: 0s
`, addr, first.CertPath, first.KeyPath, freePort(t), filepath.Join(dir, "rec"), filepath.Join(dir, "spool"))
	cfgPath := filepath.Join(dir, "whipcast.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	trusting := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}, ForceAttemptHTTP2: true}}
	gw, logs := runGatewayAt(t, bin, cfgPath, base, trusting)
	defer func() {
		if t.Failed() {
			t.Logf("gateway log:\n%s", logs)
		}
	}()

	// What a new TLS connection is given now.
	served := func() (serial, spki string) {
		t.Helper()
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"})
		if err != nil {
			t.Fatalf("TLS handshake: %v", err)
		}
		defer c.Close()
		leaf := c.ConnectionState().PeerCertificates[0]
		h := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
		return leaf.SerialNumber.String(), base64.StdEncoding.EncodeToString(h[:])
	}
	if s, k := served(); s != first.Cert.SerialNumber.String() || k != first.SPKIHash() {
		t.Fatalf("serves serial %s, want %s", s, first.Cert.SerialNumber)
	}
	res, err := trusting.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.ProtoMajor != 2 || res.Header.Get("Strict-Transport-Security") != "" {
		t.Errorf("/healthz over %s, Strict-Transport-Security %q; want HTTP/2 and no HSTS by default", res.Proto, res.Header.Get("Strict-Transport-Security"))
	}

	const stream = "tls/cam"
	pcmd := exec.Command(node, "publish.mjs", "--base", base, "--stream", stream, "--seconds", "90", "--stdin", "1",
		"--spki", first.SPKIHash()+","+next.SPKIHash(), "--chromium", chromiumPath)
	pcmd.Dir = "browser"
	pcmd.Stderr = os.Stderr
	endPublish, err := pcmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var pub publishResult
	published := make(chan struct{})
	go func() {
		defer close(published)
		out, err := pcmd.Output()
		if jerr := json.Unmarshal(out, &pub); err != nil || jerr != nil {
			pub.Error = fmt.Sprintf("driver failed: %v %s", err, out)
		}
	}()
	stopPublish := func() { endPublish.Close(); <-published }
	defer stopPublish()

	type info struct {
		State    string    `json:"state"`
		Started  time.Time `json:"started"`
		Resumes  int       `json:"resumes"`
		FramesIn uint64    `json:"frames_in"`
	}
	status := func() (info, bool) {
		var in info
		res, err := trusting.Get(base + "/v1/streams/" + stream)
		if err != nil {
			return in, false
		}
		defer res.Body.Close()
		return in, res.StatusCode == http.StatusOK && json.NewDecoder(res.Body).Decode(&in) == nil
	}
	var before info
	waitFor(t, 45*time.Second, "Chromium's publish over https", func() bool {
		select {
		case <-published:
			t.Fatalf("the publish driver ended: %+v", pub)
		default:
		}
		var ok bool
		before, ok = status()
		return ok && before.State == "live" && before.FramesIn > 0
	})

	p := playHLSWith(t, &gohlslib.Client{URI: base + "/hls/" + stream + "/index.m3u8", HTTPClient: trusting}, 4*time.Second)
	if p.video == 0 || p.audio == 0 {
		t.Fatalf("HLS over https: %d video and %d audio frames", p.video, p.audio)
	}
	t.Logf("HLS over https: %d video frames (%dx%d), %d audio frames", p.video, p.width, p.height, p.audio)

	// The reload: the renewal lands as whole files, then SIGHUP.
	for _, mv := range [][2]string{{next.CertPath, first.CertPath}, {next.KeyPath, first.KeyPath}} {
		if err := os.Rename(mv[0], mv[1]); err != nil {
			t.Fatal(err)
		}
	}
	atReload, _ := status()
	if err := gw.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the reload in the log", func() bool { return strings.Contains(logs.String(), "TLS certificate reloaded") })
	if s, k := served(); s != next.Cert.SerialNumber.String() || k != next.SPKIHash() {
		t.Fatalf("after SIGHUP a new connection gets serial %s, want the new %s", s, next.Cert.SerialNumber)
	}
	// The client's pooled connection from before the reload still serves.
	var reused bool
	req, _ := http.NewRequest("GET", base+"/healthz", nil)
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}))
	if res, err = trusting.Do(req); err != nil {
		t.Fatalf("the connection opened before the reload: %v", err)
	}
	res.Body.Close()
	if old := res.TLS.PeerCertificates[0].SerialNumber.String(); !reused || old != first.Cert.SerialNumber.String() {
		t.Errorf("after the reload: reused %v, serial %s; want the connection of before, with serial %s", reused, old, first.Cert.SerialNumber)
	}
	var after info
	waitFor(t, 20*time.Second, "frames after the reload", func() bool {
		var ok bool
		after, ok = status()
		return ok && after.FramesIn > atReload.FramesIn+100
	})
	if after.State != "live" || !after.Started.Equal(before.Started) || after.Resumes != 0 {
		t.Errorf("the publish across the reload: %+v, before %+v; want the same live session", after, before)
	}
	t.Logf("frames in: %d at the reload, %d after", atReload.FramesIn, after.FramesIn)

	// A broken renewal (a key of another certificate): the certificate
	// served stays, the log says why.
	other := ca.Issue(t, dir, "other", "127.0.0.1")
	if err := os.Rename(other.KeyPath, first.KeyPath); err != nil {
		t.Fatal(err)
	}
	if err := gw.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the failed reload in the log", func() bool {
		return strings.Contains(logs.String(), "TLS certificate reload failed") && strings.Contains(logs.String(), "private key does not match")
	})
	if s, _ := served(); s != next.Cert.SerialNumber.String() {
		t.Errorf("after a failed reload a new connection gets serial %s, want %s still", s, next.Cert.SerialNumber)
	}
	if st, ok := status(); !ok || st.State != "live" || !st.Started.Equal(before.Started) {
		t.Errorf("the publish after the failed reload: %+v", st)
	}

	stopPublish()
	if !pub.Published || pub.Error != "" {
		t.Errorf("Chromium's publish: %+v", pub)
	}
	if err := gw.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := gw.Wait(); err != nil {
		t.Errorf("gateway after SIGTERM: %v", err)
	}
}
