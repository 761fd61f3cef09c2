package rules

import (
	"fmt"
	"io/fs"
	"path"
	"sort"
)

// LoadFS compiles every .lua file directly inside dir of fsys, in file-name
// order, which is the order they run in ("10-narrow.lua" before
// "20-claims.lua"). A file that does not compile stops the load with its
// name and line. A nil cache compiles every file afresh.
func LoadFS(fsys fs.FS, dir string, cache *Cache) ([]*Program, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("load extensions: %w", err)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })

	if cache == nil {
		cache = new(Cache)
	}
	var progs []*Program
	for _, e := range entries {
		if e.IsDir() || path.Ext(e.Name()) != ".lua" {
			continue
		}
		src, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("load extensions: %w", err)
		}
		p, err := cache.Compile(e.Name(), src)
		if err != nil {
			return nil, fmt.Errorf("load extensions: %w", err)
		}
		progs = append(progs, p)
	}
	return progs, nil
}
