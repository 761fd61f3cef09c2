package rules

import (
	"fmt"
	"slices"
	"strings"

	"github.com/aymanbagabas/go-udiff"
)

// Diff is a unified diff of every file and document of two versions,
// file by file, in name order; empty when they are the same.
func Diff(a, b *Set) string {
	fa, fb := flatten(a), flatten(b)
	var names []string
	for name := range fa {
		names = append(names, name)
	}
	for name := range fb {
		names = append(names, name)
	}
	slices.Sort(names)
	var out strings.Builder
	for _, name := range slices.Compact(names) {
		if fa[name] == fb[name] {
			continue
		}
		out.WriteString(udiff.Unified(fmt.Sprintf("v%d/%s", a.Version, name), fmt.Sprintf("v%d/%s", b.Version, name), fa[name], fb[name]))
	}
	return out.String()
}

// flatten names each file group/name and each document by its name.
func flatten(s *Set) map[string]string {
	m := map[string]string{}
	for group, files := range s.Files {
		for _, f := range files {
			m[group+"/"+f.Name] = f.Source
		}
	}
	for name, doc := range s.Documents {
		m[name] = string(doc) + "\n"
	}
	return m
}
