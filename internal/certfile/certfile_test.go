package certfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/whipcast/whipcast/internal/testca"
)

func TestLoadErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	ca := testca.New(t)
	a := ca.Issue(t, dir, "a", "127.0.0.1")
	b := ca.Issue(t, dir, "b", "127.0.0.1")
	garbage := filepath.Join(dir, "garbage.crt")
	if err := os.WriteFile(garbage, []byte("not PEM"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, cert, key, want string
	}{
		{"missing cert", filepath.Join(dir, "nope.crt"), a.KeyPath, "C: open " + filepath.Join(dir, "nope.crt")},
		{"missing key", a.CertPath, filepath.Join(dir, "nope.key"), "K: open " + filepath.Join(dir, "nope.key")},
		{"key of another certificate", a.CertPath, b.KeyPath, "private key does not match public key"},
		{"not PEM", garbage, a.KeyPath, "failed to find any PEM data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.cert, tc.key, "C", "K")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want it to say %q", err, tc.want)
			}
		})
	}
	c, err := Load(a.CertPath, a.KeyPath, "C", "K")
	if err != nil || c.Leaf == nil || c.Leaf.SerialNumber.Cmp(a.Cert.SerialNumber) != 0 {
		t.Fatalf("Load: %v %+v", err, c)
	}
}

// A reload serves the new files; a reload of broken files keeps the
// certificate served before and says so.
func TestReloaderSwapsAndKeepsOnFailure(t *testing.T) {
	dir := t.TempDir()
	ca := testca.New(t)
	first := ca.Issue(t, dir, "srv", "127.0.0.1")
	r, err := NewReloader(first.CertPath, first.KeyPath, "C", "K")
	if err != nil {
		t.Fatal(err)
	}
	served := func() string {
		c, _ := r.GetCertificate(nil)
		return c.Leaf.SerialNumber.String()
	}
	if served() != first.Cert.SerialNumber.String() {
		t.Fatalf("serves %s, want %s", served(), first.Cert.SerialNumber)
	}

	second := ca.Issue(t, dir, "srv", "127.0.0.1") // same paths, new key and serial
	leaf, err := r.Reload()
	if err != nil || leaf.SerialNumber.Cmp(second.Cert.SerialNumber) != 0 || served() != second.Cert.SerialNumber.String() {
		t.Fatalf("after reload: %v, serves %s, want %s", err, served(), second.Cert.SerialNumber)
	}

	// A renewal half done: the new certificate is there, its key is not.
	other := ca.Issue(t, dir, "other", "127.0.0.1")
	if err := os.Rename(other.CertPath, second.CertPath); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Reload(); !errors.Is(err, ErrKept) || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("reload of a mismatched pair: %v", err)
	}
	if served() != second.Cert.SerialNumber.String() || r.Leaf().SerialNumber.Cmp(second.Cert.SerialNumber) != 0 {
		t.Fatalf("after a failed reload it serves %s, want the previous %s", served(), second.Cert.SerialNumber)
	}
	if err := os.Remove(second.KeyPath); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Reload(); !errors.Is(err, ErrKept) || !strings.Contains(err.Error(), "K: open") {
		t.Fatalf("reload with the key gone: %v", err)
	}
	if served() != second.Cert.SerialNumber.String() {
		t.Fatalf("after a failed reload it serves %s", served())
	}
}
