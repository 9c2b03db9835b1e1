package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// S3Settings configure an S3 store. Zero fields mean their default.
type S3Settings struct {
	// Bucket is the bucket name. Required.
	Bucket string
	// Endpoint is the base URL of an S3-compatible service, e.g.
	// "http://127.0.0.1:7070". Default: AWS's endpoint for Region.
	Endpoint string
	// Region is the signing region. Default: the AWS chain's, else "us-east-1".
	Region string
	// PathStyle addresses the bucket as endpoint/bucket/key instead of
	// bucket.endpoint/key (most S3-compatible servers want it).
	PathStyle bool
	// AccessKey and SecretKey are static credentials. Default: the standard
	// AWS chain (environment, shared files, instance role).
	AccessKey, SecretKey string
	// PartSize is the multipart part size for large objects; objects smaller
	// than one part go in a single PutObject. Default 8 MiB (minimum 5 MiB).
	PartSize int64
}

// S3 is a Store in an S3 bucket (aws-sdk-go-v2). Objects of more than one
// part are uploaded as multipart uploads by the SDK's Uploader.
type S3 struct {
	bucket   string
	client   *s3.Client
	uploader *manager.Uploader
}

// NewS3 makes an S3 store. No request is made.
func NewS3(ctx context.Context, s S3Settings) (*S3, error) {
	if s.Bucket == "" {
		return nil, errors.New("storage: s3 bucket is empty")
	}
	var opts []func(*awsconfig.LoadOptions) error
	if s.AccessKey != "" {
		opts = append(opts, awsconfig.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, "")))
	}
	if s.Region != "" {
		opts = append(opts, awsconfig.WithRegion(s.Region))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("storage: aws config: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if s.Endpoint != "" {
			o.BaseEndpoint = aws.String(s.Endpoint)
		}
		o.UsePathStyle = s.PathStyle
		// The spool retries with its own backoff; one SDK retry smooths over
		// a dropped connection without holding the uploader for long.
		o.RetryMaxAttempts = 2
	})
	part := s.PartSize
	if part == 0 {
		part = 8 << 20
	}
	part = max(part, manager.MinUploadPartSize)
	up := manager.NewUploader(client, func(u *manager.Uploader) {
		u.PartSize = part
		u.Concurrency = 2
	})
	return &S3{bucket: s.Bucket, client: client, uploader: up}, nil
}

// Put implements Store.
func (c *S3) Put(ctx context.Context, key string, r io.Reader, _ int64, m Meta) error {
	if err := ValidKey(key); err != nil {
		return err
	}
	in := &s3.PutObjectInput{Bucket: &c.bucket, Key: &key, Body: r}
	ct := m.ContentType
	if ct == "" {
		ct = TypeByKey(key)
	}
	in.ContentType = &ct
	if m.CacheControl != "" {
		in.CacheControl = aws.String(m.CacheControl)
	}
	_, err := c.uploader.Upload(ctx, in)
	return s3Err("put", key, err)
}

// Get implements Store.
func (c *S3) Get(ctx context.Context, key string) ([]byte, error) {
	if err := ValidKey(key); err != nil {
		return nil, err
	}
	out, err := c.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &c.bucket, Key: &key})
	if err != nil {
		return nil, s3Err("get", key, err)
	}
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}

// Delete implements Store.
func (c *S3) Delete(ctx context.Context, key string) error {
	if err := ValidKey(key); err != nil {
		return err
	}
	_, err := c.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &c.bucket, Key: &key})
	err = s3Err("delete", key, err)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// List implements Store.
func (c *S3) List(ctx context.Context, prefix string) ([]string, error) {
	var keys []string
	p := s3.NewListObjectsV2Paginator(c.client, &s3.ListObjectsV2Input{Bucket: &c.bucket, Prefix: &prefix})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, s3Err("list", prefix, err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	sort.Strings(keys)
	return keys, nil
}

// s3Err names the operation and classifies credential refusals and missing
// objects so callers can tell them apart with errors.Is.
func s3Err(op, key string, err error) error {
	if err == nil {
		return nil
	}
	var re *awshttp.ResponseError
	status := 0
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	code := ""
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	switch {
	case status == http.StatusForbidden, code == "AccessDenied", code == "InvalidAccessKeyId", code == "SignatureDoesNotMatch":
		return fmt.Errorf("storage: s3 %s %s: %w: %w", op, key, ErrForbidden, err)
	case status == http.StatusNotFound, code == "NoSuchKey":
		return fmt.Errorf("storage: s3 %s %s: %w: %w", op, key, ErrNotFound, err)
	}
	return fmt.Errorf("storage: s3 %s %s: %w", op, key, err)
}
