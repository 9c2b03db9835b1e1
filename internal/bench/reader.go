package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// readerResult is what one HLS or DASH reader saw of its stream.
type readerResult struct {
	// First is the time from the WHIP POST to the first segment or part
	// fetched in full (0: none was).
	First time.Duration
	// Delays are the packaging delays seen at each playlist or MPD load:
	// the wall time of the load minus the wall time the newest listed
	// media ends at (PROGRAM-DATE-TIME, or the MPD's availability start
	// plus the media time).
	Delays []time.Duration
	// Fetches counts media (segment and part) fetches; Errors the failed
	// requests of any kind; Bytes the media bytes read.
	Fetches, Errors int
	Bytes           int64
	// Err is the last error, in words.
	Err string
}

// getter does the readers' requests, retrying until ctx ends where asked.
type getter struct {
	client *http.Client
	res    *readerResult
}

// get fetches u and returns the body of a 200 answer.
func (g getter) get(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return b, nil
}

// fail counts a failed request unless the run is ending.
func (g getter) fail(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	g.res.Errors++
	g.res.Err = err.Error()
}

// media fetches one segment or part and records the first success.
func (g getter) media(ctx context.Context, u string, post time.Time) {
	b, err := g.get(ctx, u)
	if err != nil {
		g.fail(ctx, err)
		return
	}
	g.res.Fetches++
	g.res.Bytes += int64(len(b))
	if g.res.First == 0 {
		g.res.First = time.Since(post)
	}
}

// retryWait is the pause between attempts to load a playlist that is not
// there yet (the stream not published, or no segment yet).
const retryWait = 100 * time.Millisecond

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// resolve makes ref absolute against base.
func resolve(base, ref string) (string, error) {
	b, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	r, err := url.Parse(ref)
	if err != nil {
		return "", err
	}
	return b.ResolveReference(r).String(), nil
}
