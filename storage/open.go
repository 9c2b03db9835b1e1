package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Object is an open stored object: read and seek without holding it in
// memory (an hour of recording is gigabytes). Close releases it.
type Object interface {
	io.ReadSeekCloser
	// Size is the object's length in bytes.
	Size() int64
}

// Opener is implemented by stores that can stream an object. Both Local
// and S3 do; callers fall back to Store.Get for stores that don't.
type Opener interface {
	// Open returns the object, or an error wrapping ErrNotFound.
	Open(ctx context.Context, key string) (Object, error)
}

// Open implements Opener with the file itself.
func (l *Local) Open(_ context.Context, key string) (Object, error) {
	name, err := l.file(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return localObject{f, st.Size()}, nil
}

type localObject struct {
	*os.File
	size int64
}

func (o localObject) Size() int64 { return o.size }

// Open implements Opener: a HEAD for the size, then ranged GETs that start
// wherever the reader has been seeked to, so an HTTP Range request for the
// end of a large MP4 fetches only that end.
func (c *S3) Open(ctx context.Context, key string) (Object, error) {
	if err := ValidKey(key); err != nil {
		return nil, err
	}
	head, err := c.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &c.bucket, Key: &key})
	if err != nil {
		return nil, s3Err("head", key, err)
	}
	size := int64(0)
	if head.ContentLength != nil {
		size = *head.ContentLength
	}
	return &s3Object{c: c, ctx: ctx, key: key, size: size}, nil
}

type s3Object struct {
	c    *S3
	ctx  context.Context
	key  string
	size int64
	off  int64
	body io.ReadCloser // open from off; nil until the next Read
}

func (o *s3Object) Size() int64 { return o.size }

func (o *s3Object) Read(p []byte) (int, error) {
	if o.off >= o.size {
		return 0, io.EOF
	}
	if o.body == nil {
		rng := "bytes=" + strconv.FormatInt(o.off, 10) + "-"
		out, err := o.c.client.GetObject(o.ctx, &s3.GetObjectInput{Bucket: &o.c.bucket, Key: &o.key, Range: &rng})
		if err != nil {
			return 0, s3Err("get", o.key, err)
		}
		o.body = out.Body
	}
	n, err := o.body.Read(p)
	o.off += int64(n)
	if errors.Is(err, io.EOF) && o.off < o.size {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (o *s3Object) Seek(offset int64, whence int) (int64, error) {
	var off int64
	switch whence {
	case io.SeekStart:
		off = offset
	case io.SeekCurrent:
		off = o.off + offset
	case io.SeekEnd:
		off = o.size + offset
	default:
		return 0, errors.New("storage: bad whence")
	}
	if off < 0 {
		return 0, errors.New("storage: seek before start")
	}
	if off != o.off && o.body != nil {
		o.body.Close()
		o.body = nil
	}
	o.off = off
	return off, nil
}

func (o *s3Object) Close() error {
	if o.body != nil {
		return o.body.Close()
	}
	return nil
}
