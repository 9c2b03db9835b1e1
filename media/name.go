package media

import (
	"errors"
	"strings"
)

// MaxNameLen bounds a whole stream name, segments and slashes included.
const MaxNameLen = 255

// ErrBadName is wrapped by ValidateName's errors.
var ErrBadName = errors.New("bad stream name")

// ValidateName checks a stream name: one or more segments of 1–64 characters
// from [A-Za-z0-9_-], joined by "/". The rule keeps names safe as URL paths and
// storage keys: no "..", no empty segment, no leading or trailing slash.
func ValidateName(name string) error {
	if name == "" {
		return errorf("empty")
	}
	if len(name) > MaxNameLen {
		return errorf("longer than 255 characters")
	}
	for seg := range strings.SplitSeq(name, "/") {
		if seg == "" {
			return errorf("empty segment (leading, trailing or double slash)")
		}
		if len(seg) > 64 {
			return errorf("segment longer than 64 characters")
		}
		for i := 0; i < len(seg); i++ {
			c := seg[i]
			ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
			if !ok {
				return errorf("only A-Z a-z 0-9 _ - and / are allowed")
			}
		}
	}
	return nil
}

type nameError string

func (e nameError) Error() string { return "bad stream name: " + string(e) }
func (e nameError) Unwrap() error { return ErrBadName }

func errorf(s string) error { return nameError(s) }
