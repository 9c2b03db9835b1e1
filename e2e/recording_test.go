package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/whipcast/whipcast/config"
	"github.com/whipcast/whipcast/internal/gateway"
	"github.com/whipcast/whipcast/internal/whipclient"
	"github.com/whipcast/whipcast/storage"
)

// versitygw is a real S3-compatible server (Apache-2.0) on a loopback port,
// serving a temporary directory; Stop and Start keep the port and the data.
type versitygw struct {
	t    *testing.T
	bin  string
	addr string
	dir  string
	cmd  *exec.Cmd
}

const (
	s3Key, s3Secret, s3Bucket = "whipcastkey", "whipcastsecret", "rec"
)

func findVersitygw(t *testing.T) string {
	t.Helper()
	if p, err := filepath.Abs("../.bin/versitygw"); err == nil {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatal("versitygw not found in .bin/ or PATH (make deps-test installs it)")
	}
	t.Skip("versitygw not installed: run make deps-test")
	return ""
}

func startVersitygw(t *testing.T) *versitygw {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	v := &versitygw{t: t, bin: findVersitygw(t), addr: addr, dir: t.TempDir()}
	v.Start()
	t.Cleanup(v.Stop)
	c := v.client()
	if _, err := c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(s3Bucket)}); err != nil {
		t.Fatal(err)
	}
	return v
}

func (v *versitygw) Start() {
	v.t.Helper()
	v.cmd = exec.Command(v.bin, "--access", s3Key, "--secret", s3Secret, "--port", v.addr, "posix", v.dir)
	if err := v.cmd.Start(); err != nil {
		v.t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", v.addr)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			v.t.Fatalf("versitygw did not listen on %s", v.addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the server (an outage, as abrupt as it gets).
func (v *versitygw) Stop() {
	if v.cmd != nil && v.cmd.Process != nil {
		_ = v.cmd.Process.Kill()
		_ = v.cmd.Wait()
		v.cmd = nil
	}
}

func (v *versitygw) client() *s3.Client {
	return s3.New(s3.Options{
		Region: "us-east-1", BaseEndpoint: aws.String("http://" + v.addr), UsePathStyle: true,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: s3Key, SecretAccessKey: s3Secret}, nil
		}),
	})
}

func (v *versitygw) store(t *testing.T) storage.Store {
	st, err := storage.NewS3(context.Background(), storage.S3Settings{
		Bucket: s3Bucket, Endpoint: "http://" + v.addr, Region: "us-east-1", PathStyle: true,
		AccessKey: s3Key, SecretKey: s3Secret,
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (v *versitygw) config(spool string) string {
	return fmt.Sprintf(`storage:
  type: s3
  spool_dir: %s
  shutdown_timeout: 5s
  s3: { bucket: %s, prefix: recordings, endpoint: "http://%s", region: us-east-1, path_style: true, access_key: %s, secret_key: %s }
streams:
  - match: "rec/*"
    record: true
`, spool, s3Bucket, v.addr, s3Key, s3Secret)
}

// waitRecording waits until the store holds a finished recording of stream
// (its multivariant playlist is the last object written) and downloads it.
func waitRecording(t *testing.T, st storage.Store, stream string, within time.Duration) string {
	t.Helper()
	ctx := context.Background()
	var keys []string
	var base string
	waitFor(t, within, "the finished recording in the bucket", func() bool {
		var err error
		keys, err = st.List(ctx, "recordings/"+stream+"/")
		if err != nil {
			return false
		}
		for _, k := range keys {
			if strings.HasSuffix(k, "/index.m3u8") {
				base = strings.TrimSuffix(k, "index.m3u8")
				return true
			}
		}
		return false
	})
	dir := t.TempDir()
	for _, k := range keys {
		if !strings.HasPrefix(k, base) {
			continue
		}
		b, err := st.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, strings.TrimPrefix(k, base)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// checkRecording probes the MP4 and the VOD playlist of a downloaded
// recording: h264 + the default audio codec, the duration, and (when frames > 0) every frame.
func checkRecording(t *testing.T, dir string, seconds float64, frames int) {
	t.Helper()
	pl, err := os.ReadFile(filepath.Join(dir, "video.m3u8"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(pl), "#EXT-X-PLAYLIST-TYPE:VOD") || !strings.HasSuffix(string(pl), "#EXT-X-ENDLIST\n") {
		t.Errorf("video playlist is not a finished VOD playlist:\n%s", pl)
	}
	for _, f := range []string{"recording.mp4", "index.m3u8"} {
		p := runProbe(t, filepath.Join(dir, f), true)
		vcodec, _, vframes, vok := p.stream("video")
		acodec, _, aframes, aok := p.stream("audio")
		if !vok || !aok || vcodec != "h264" || acodec != defaultAudio() {
			t.Errorf("%s: codecs video %q audio %q, want h264 and %s", f, vcodec, acodec, defaultAudio())
		}
		if d := p.duration(); math.Abs(d-seconds) > 1 {
			t.Errorf("%s: duration %.3f s, want %.1f ± 1 s", f, d, seconds)
		}
		if frames > 0 && vframes != frames {
			t.Errorf("%s: %d video frames, %d were sent", f, vframes, frames)
		}
		t.Logf("%s: h264 %d frames, %s %d frames, %s s", f, vframes, acodec, aframes, p.Format.Duration)
	}
	if out, err := exec.Command("ffmpeg", "-v", "error", "-i", filepath.Join(dir, "recording.mp4"), "-f", "null", "-").CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("ffmpeg decode of recording.mp4: %v\n%s", err, out)
	}
}

func publish(t *testing.T, g *gateway.Gateway, stream string, opts whipclient.Options) *whipclient.Client {
	t.Helper()
	opts.LoopbackOnly = true
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	pub, err := whipclient.Publish(ctx, "http://"+g.HTTPAddr().String()+"/whip/"+stream, "", fixtureVideo, fixtureAudio, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	return pub
}

func spoolObjects(t *testing.T, dir string) int {
	n := 0
	_ = filepath.WalkDir(filepath.Join(dir, "data"), func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return nil
	})
	return n
}

// TestE2ERecordS3 records 10 s published over WHIP to a real S3 server and
// checks the MP4 and the VOD playlist read back from the bucket.
func TestE2ERecordS3(t *testing.T) {
	v := startVersitygw(t)
	spool := t.TempDir()
	g := startGateway(t, v.config(spool))
	pub := publish(t, g, "rec/cam1", whipclient.Options{Drain: true})
	stats, err := pub.Wait()
	if err != nil {
		t.Fatal(err)
	}
	_ = pub.Close()
	dir := waitRecording(t, v.store(t), "rec/cam1", 20*time.Second)
	checkRecording(t, dir, fixtureSeconds, stats.VideoFrames)
	checkRangedRead(t, v.store(t), dir)
	waitFor(t, 10*time.Second, "an empty spool", func() bool { return g.Spool().Pending() == 0 })
	if n := spoolObjects(t, spool); n != 0 {
		t.Errorf("%d objects left in the spool", n)
	}
}

// TestE2ERecordS3Outage stops S3 3 s into a 15 s recording and brings it
// back 5 s later on the same port and data: the spool catches up and the
// recording is complete.
func TestE2ERecordS3Outage(t *testing.T) {
	v := startVersitygw(t)
	spool := t.TempDir()
	g := startGateway(t, v.config(spool))
	pub := publish(t, g, "rec/outage", whipclient.Options{Loop: 2, MaxDuration: 15 * time.Second, Drain: true})
	time.Sleep(3 * time.Second)
	v.Stop()
	time.Sleep(5 * time.Second)
	st := g.Spool().Status()
	t.Logf("after 5 s of outage: %+v", st)
	if st.Pending == 0 || st.State != "retrying" {
		t.Errorf("spool during the outage: %+v, want objects pending and state retrying", st)
	}
	v.Start()
	back := time.Now()
	waitFor(t, 20*time.Second, "the spool to catch up", func() bool { return g.Spool().Pending() == 0 })
	t.Logf("spool caught up %v after S3 came back", time.Since(back).Round(time.Millisecond))
	stats, err := pub.Wait()
	if err != nil {
		t.Fatal(err)
	}
	_ = pub.Close()
	dir := waitRecording(t, v.store(t), "rec/outage", 20*time.Second)
	checkRecording(t, dir, 15, stats.VideoFrames)
	waitFor(t, 10*time.Second, "an empty spool", func() bool { return g.Spool().Pending() == 0 })
	if n := spoolObjects(t, spool); n != 0 {
		t.Errorf("%d objects left in the spool", n)
	}
}

// TestE2ERecordCrashRecovery abandons a gateway mid-recording as a crash
// would (nothing finalised; S3 down, so the segments are still spooled), then
// starts a new gateway on the same spool: it uploads the spooled segments
// and finalises the recording.
func TestE2ERecordCrashRecovery(t *testing.T) {
	v := startVersitygw(t)
	spool := t.TempDir()
	cfg := v.config(spool)
	g1, stop1 := startStoppableGateway(t, strings.Replace(cfg, "shutdown_timeout: 5s", "shutdown_timeout: 1s", 1))
	pub := publish(t, g1, "rec/crash", whipclient.Options{})
	// S3 goes down before the first segment, so every object is spooled.
	time.Sleep(time.Second)
	v.Stop()
	time.Sleep(5 * time.Second)
	t.Logf("spool before the crash: %+v", g1.Spool().Status())
	g1.Recorder().Abandon()
	_ = pub.Close()
	stop1()
	left := spoolObjects(t, spool)
	t.Logf("objects left in the spool by the crash: %d", left)
	if left == 0 {
		t.Fatal("nothing left in the spool to recover")
	}

	v.Start()
	g2 := startGateway(t, cfg)
	dir := waitRecording(t, v.store(t), "rec/crash", 30*time.Second)
	waitFor(t, 10*time.Second, "an empty spool", func() bool { return g2.Spool().Pending() == 0 })
	p := runProbe(t, filepath.Join(dir, "recording.mp4"), true)
	_, _, vframes, vok := p.stream("video")
	if !vok || vframes < 30 || p.duration() < 1 {
		t.Errorf("recovered recording: %d video frames, %.3f s", vframes, p.duration())
	}
	if out, err := exec.Command("ffmpeg", "-v", "error", "-i", filepath.Join(dir, "recording.mp4"), "-f", "null", "-").CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("ffmpeg decode of the recovered recording.mp4: %v\n%s", err, out)
	}
	if n := spoolObjects(t, spool); n != 0 {
		t.Errorf("%d objects left in the spool", n)
	}
	if _, err := os.Stat(filepath.Join(spool, "sessions")); err == nil {
		if d, _ := os.ReadDir(filepath.Join(spool, "sessions")); len(d) != 0 {
			t.Errorf("open sessions left: %v", d)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		t.Error(err)
	}
}

// startStoppableGateway is startGateway with a stop function for the middle
// of a test (safe to call again at cleanup).
func startStoppableGateway(t *testing.T, cfgYAML string) (*gateway.Gateway, func()) {
	t.Helper()
	doc := "http:\n  addr: 127.0.0.1:0\nwebrtc:\n  port: 0\n  listen_ip: 127.0.0.1\n  reconnect_window: 0s\n" + cfgYAML
	doc += "\nlimits:\n  max_cpu: 0\n  max_machine_cpu: 0\n  max_lag: 0s\n  rate:\n    exempt_loopback: true\n" // as startGateway
	cfg, err := config.Load([]byte(doc), nil)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	g, err := gateway.New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("gateway stopped with: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return g, stop
}

// checkRangedRead opens the stored MP4 as the API serves it (ranged reads,
// not the whole object in memory) and compares a seek into its last bytes
// with the downloaded copy.
func checkRangedRead(t *testing.T, st storage.Store, dir string) {
	t.Helper()
	want, err := os.ReadFile(filepath.Join(dir, "recording.mp4"))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := st.List(context.Background(), "recordings/")
	if err != nil {
		t.Fatal(err)
	}
	var key string
	for _, k := range keys {
		if strings.HasSuffix(k, "/recording.mp4") {
			key = k
		}
	}
	obj, err := st.(storage.Opener).Open(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	if obj.Size() != int64(len(want)) {
		t.Fatalf("Open size %d, the object has %d bytes", obj.Size(), len(want))
	}
	tail := make([]byte, 1000)
	if _, err := obj.Seek(-int64(len(tail)), io.SeekEnd); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(obj, tail); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(tail, want[len(want)-len(tail):]) {
		t.Fatal("ranged read of the MP4's end differs from the object")
	}
	head := make([]byte, 8)
	if _, err := obj.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(obj, head); err != nil || !bytes.Equal(head, want[:8]) {
		t.Fatalf("ranged read of the MP4's start: %v", err)
	}
}
