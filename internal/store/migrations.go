package store

import (
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
)

// Migration is one schema change of a Store implementation, read from an
// embedded file named NNNN_description.sql.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// ReadMigrations returns the *.sql files in dir of fsys in version order,
// refusing names without a positive version prefix and versions used twice.
// Implementations apply those newer than the database's version at Open.
func ReadMigrations(fsys fs.FS, dir string) ([]Migration, error) {
	names, err := fs.Glob(fsys, path.Join(dir, "*.sql"))
	if err != nil {
		return nil, err
	}
	ms := make([]Migration, 0, len(names))
	for _, name := range names { // fs.Glob sorts, and versions are zero-padded
		prefix, _, ok := strings.Cut(path.Base(name), "_")
		version, err := strconv.Atoi(prefix)
		if !ok || err != nil || version <= 0 {
			return nil, fmt.Errorf("migration %s: name must start with a positive version and '_'", name)
		}
		if n := len(ms); n > 0 && ms[n-1].Version == version {
			return nil, fmt.Errorf("migration %s: version %d is used twice", name, version)
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, Migration{Version: version, Name: name, SQL: string(b)})
	}
	return ms, nil
}
