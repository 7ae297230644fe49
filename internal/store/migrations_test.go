package store

import (
	"testing"
	"testing/fstest"
)

func TestReadMigrations(t *testing.T) {
	good := fstest.MapFS{
		"m/0002_more.sql":  {Data: []byte("B")},
		"m/0001_init.sql":  {Data: []byte("A")},
		"m/README.md":      {Data: []byte("not a migration")},
		"other/0003_x.sql": {Data: []byte("elsewhere")},
	}
	ms, err := ReadMigrations(good, "m")
	if err != nil || len(ms) != 2 || ms[0].Version != 1 || ms[1].Version != 2 || ms[0].SQL != "A" {
		t.Fatalf("got %+v, %v, want versions 1 and 2 in order", ms, err)
	}
	for name, fsys := range map[string]fstest.MapFS{
		"no version":   {"m/init.sql": {}},
		"zero version": {"m/0000_init.sql": {}},
		"twice":        {"m/0001_a.sql": {}, "m/01_b.sql": {}},
	} {
		if _, err := ReadMigrations(fsys, "m"); err == nil {
			t.Errorf("%s: got nil error, want the file refused", name)
		}
	}
}
