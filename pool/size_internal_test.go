package pool

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// Limits on the pool's own code, so that each room stays readable: a
// struct has at most maxFields fields (blank padding not counted), a
// function at most maxLines lines.
const (
	maxFields = 16
	maxLines  = 70
)

// sizeExceptions are the structs and functions allowed past the limits,
// each with why.
var sizeExceptions = map[string]string{
	"Config": "the public configuration: each field is one documented option, and grouping them would change every caller",
}

// TestRoomSizes parses the package's files (tests aside) and fails for
// every struct or function over the limits.
func TestRoomSizes(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.TypeSpec:
				st, ok := n.Type.(*ast.StructType)
				if !ok {
					break
				}
				if got := fields(st); got > maxFields && sizeExceptions[n.Name.Name] == "" {
					t.Errorf("%s: struct %s has %d fields, over %d: split it into named parts", fset.Position(n.Pos()), n.Name.Name, got, maxFields)
				}
			case *ast.FuncDecl:
				lines := fset.Position(n.End()).Line - fset.Position(n.Pos()).Line + 1
				if lines > maxLines && sizeExceptions[n.Name.Name] == "" {
					t.Errorf("%s: func %s has %d lines, over %d", fset.Position(n.Pos()), n.Name.Name, lines, maxLines)
				}
			}
			return true
		})
	}
}

// fields counts a struct's fields, but for blank ones (cache-line padding).
func fields(st *ast.StructType) int {
	n := 0
	for _, f := range st.Fields.List {
		if len(f.Names) == 0 {
			n++ // embedded
		}
		for _, id := range f.Names {
			if id.Name != "_" {
				n++
			}
		}
	}
	return n
}
