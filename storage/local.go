package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Local is a Store in a directory of the local disk: key "a/b.mp4" is the
// file Root/a/b.mp4. Writes go to a temporary file that is fsync'd and
// renamed, so a reader never sees half an object. Meta is not kept.
type Local struct {
	// Root is the directory holding the objects; created when missing.
	Root string
}

// NewLocal returns a Local store rooted at dir, creating it.
func NewLocal(dir string) (*Local, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, diskErr(err)
	}
	return &Local{Root: dir}, nil
}

func (l *Local) file(key string) (string, error) {
	if err := ValidKey(key); err != nil {
		return "", err
	}
	return filepath.Join(l.Root, filepath.FromSlash(key)), nil
}

// Put implements Store.
func (l *Local) Put(_ context.Context, key string, r io.Reader, _ int64, _ Meta) error {
	name, err := l.file(key)
	if err != nil {
		return err
	}
	return writeFileAtomic(name, func(w io.Writer) error {
		_, err := io.Copy(w, r)
		return err
	})
}

// writeFileAtomic writes name through a temporary file in the same
// directory, fsyncs it, renames it into place and fsyncs the directory.
func writeFileAtomic(name string, write func(io.Writer) error) error {
	tmp, err := writeTemp(name, write)
	if err != nil {
		return err
	}
	return commitTemp(tmp, name)
}

// writeTemp writes and fsyncs a temporary file next to name.
func writeTemp(name string, write func(io.Writer) error) (string, error) {
	dir := filepath.Dir(name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", diskErr(err)
	}
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return "", diskErr(err)
	}
	tmp := f.Name()
	err = write(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(tmp)
		return "", diskErr(err)
	}
	return tmp, nil
}

// commitTemp renames tmp to name and fsyncs the directory.
func commitTemp(tmp, name string) error {
	if err := os.Rename(tmp, name); err != nil {
		_ = os.Remove(tmp)
		return diskErr(err)
	}
	return syncDir(filepath.Dir(name))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return diskErr(err)
	}
	return nil
}

// Get implements Store.
func (l *Local) Get(_ context.Context, key string) ([]byte, error) {
	name, err := l.file(key)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	return b, err
}

// Delete implements Store.
func (l *Local) Delete(_ context.Context, key string) error {
	name, err := l.file(key)
	if err != nil {
		return err
	}
	if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// List implements Store. Temporary files of writes in progress are skipped.
func (l *Local) List(_ context.Context, prefix string) ([]string, error) {
	return listDir(l.Root, prefix)
}

// listByAge returns the keys of the files under root, oldest modification
// first (the spool's order), and the newest modification time.
func listByAge(root string) ([]string, time.Time, error) {
	type file struct {
		key string
		mod time.Time
	}
	var files []file
	keys, err := listDir(root, "")
	for _, k := range keys {
		if fi, serr := os.Stat(filepath.Join(root, filepath.FromSlash(k))); serr == nil {
			files = append(files, file{k, fi.ModTime()})
		}
	}
	sort.SliceStable(files, func(i, j int) bool { return files[i].mod.Before(files[j].mod) })
	keys = keys[:0]
	var newest time.Time
	for _, f := range files {
		keys = append(keys, f.key)
		if f.mod.After(newest) {
			newest = f.mod
		}
	}
	return keys, newest, err
}

// listDir returns the keys of the files under root starting with prefix.
func listDir(root, prefix string) ([]string, error) {
	var keys []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		rel, rerr := filepath.Rel(root, p)
		if rerr != nil || rel == "." {
			return nil
		}
		key := filepath.ToSlash(rel)
		if d.IsDir() {
			// Skip directories that cannot hold a key with the prefix.
			if !strings.HasPrefix(key+"/", prefix) && !strings.HasPrefix(prefix, key+"/") {
				return fs.SkipDir
			}
			return nil
		}
		if strings.HasPrefix(d.Name(), ".tmp-") || !strings.HasPrefix(key, prefix) {
			return nil
		}
		keys = append(keys, key)
		return nil
	})
	sort.Strings(keys)
	return keys, err
}
