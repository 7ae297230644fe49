package password

import (
	"errors"
	"strings"
	"testing"
)

// fast keeps the tests quick; Default is exercised once.
var fast = Params{Memory: 64, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16}

func TestHashVerify(t *testing.T) {
	h, err := Hash("correct horse", Default)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("got %q, want an OWASP-parameter argon2id PHC string", h)
	}
	tests := []struct {
		name       string
		pw         string
		want       Params
		ok, rehash bool
	}{
		{"right password", "correct horse", Default, true, false},
		{"wrong password", "correct horsE", Default, false, false},
		{"empty password", "", Default, false, false},
		{"parameters changed", "correct horse", fast, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, rehash, err := Verify(tt.pw, h, tt.want)
			if err != nil || ok != tt.ok || rehash != tt.rehash {
				t.Fatalf("got ok=%v rehash=%v err=%v, want ok=%v rehash=%v", ok, rehash, err, tt.ok, tt.rehash)
			}
		})
	}
}

func TestSaltsDiffer(t *testing.T) {
	a, _ := Hash("pw", fast)
	b, _ := Hash("pw", fast)
	if a == b {
		t.Fatalf("got two equal hashes of one password, want distinct salts")
	}
}

func TestMalformed(t *testing.T) {
	for _, h := range []string{"", "plain", "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=18$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=999999999,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=64,t=1,p=1$!!$aGFzaGhhc2hoYXNoaGFzaA"} {
		if _, _, err := Verify("pw", h, fast); !errors.Is(err, ErrMalformed) {
			t.Errorf("Verify(%q): got %v, want ErrMalformed", h, err)
		}
	}
}

func FuzzVerify(f *testing.F) {
	f.Add("pw", "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA")
	f.Add("", "$argon2id$v=19$m=19456,t=2,p=1$$")
	f.Fuzz(func(t *testing.T, pw, hash string) {
		p, _, _, err := parse(hash)
		if err != nil || p.Memory > 1024 || p.Time > 2 {
			return // parse must not panic; big costs are not worth fuzzing
		}
		Verify(pw, hash, fast) // must not panic
	})
}
