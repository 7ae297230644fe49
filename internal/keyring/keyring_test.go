package keyring

import (
	"errors"
	"path/filepath"
	"testing"
)

func TestHasherSeparatesPurposes(t *testing.T) {
	k := Generate()
	a, b := k.Hasher(PurposeRefreshToken), k.Hasher(PurposeClientSecret)
	h := a.Hash("secret")
	if !a.Verify("secret", h) {
		t.Fatalf("got Verify false for the right value, want true")
	}
	if a.Verify("secreT", h) {
		t.Fatalf("got Verify true for a wrong value, want false")
	}
	if b.Verify("secret", h) {
		t.Fatalf("got a hash that verifies under another purpose, want separation")
	}
	if Generate().Hasher(PurposeRefreshToken).Verify("secret", h) {
		t.Fatalf("got a hash that verifies under another master key")
	}
}

func TestSealOpen(t *testing.T) {
	k := Generate()
	sealed, err := k.Seal(PurposeSigningKey, []byte("private"), []byte("kid-1"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := k.Open(PurposeSigningKey, sealed, []byte("kid-1"))
	if err != nil || string(got) != "private" {
		t.Fatalf("got %q, %v, want %q", got, err, "private")
	}
	for name, open := range map[string]func() ([]byte, error){
		"other aad":     func() ([]byte, error) { return k.Open(PurposeSigningKey, sealed, []byte("kid-2")) },
		"other key":     func() ([]byte, error) { return Generate().Open(PurposeSigningKey, sealed, []byte("kid-1")) },
		"other purpose": func() ([]byte, error) { return k.Open(PurposeClientSecret, sealed, []byte("kid-1")) },
		"truncated":     func() ([]byte, error) { return k.Open(PurposeSigningKey, sealed[:5], []byte("kid-1")) },
	} {
		if _, err := open(); !errors.Is(err, ErrOpen) {
			t.Errorf("%s: got %v, want ErrOpen", name, err)
		}
	}
}

func TestLoadFileCreatesOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "master.key")
	if _, err := LoadFile(path, false); err == nil {
		t.Fatalf("got nil error for a missing file without create")
	}
	k1, err := LoadFile(path, true)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := LoadFile(path, true)
	if err != nil {
		t.Fatal(err)
	}
	if k1.master != k2.master {
		t.Fatalf("got a different key on the second load, want the stored one")
	}
}
