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

// MatchName reports whether a stream name fits a config rule's pattern: "*"
// matches any run of characters, "/" included, "?" any one character, and
// everything else itself. Rules in config (record, restream) use it.
func MatchName(pattern, name string) bool {
	for len(pattern) > 0 {
		switch pattern[0] {
		case '*':
			for i := len(name); i >= 0; i-- {
				if MatchName(pattern[1:], name[i:]) {
					return true
				}
			}
			return false
		case '?':
			if name == "" {
				return false
			}
		default:
			if name == "" || name[0] != pattern[0] {
				return false
			}
		}
		pattern, name = pattern[1:], name[1:]
	}
	return name == ""
}
