package pool

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
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

// TestConnStateInConn checks that what a connection knows of its tasks
// (connState, guarded by the connection's mu) is touched only in conn.go
// and conntasks.go, by the connection's own methods: the scheduler, the supervisor, the
// results handler and Stats go through them, and so cannot forget the
// lock. Imports are not resolved; the package's own types are all the
// check needs.
func TestConnStateInConn(t *testing.T) {
	fset := token.NewFileSet()
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	conf := types.Config{
		Importer: noImports{},
		Error:    func(error) {}, // the unresolved imports
	}
	info := &types.Info{Selections: map[*ast.SelectorExpr]*types.Selection{}}
	pkg, _ := conf.Check("pool", fset, files, info)
	guarded := map[types.Object]bool{}
	for _, name := range []string{"connState", "flags"} {
		obj := pkg.Scope().Lookup(name)
		if obj == nil {
			t.Fatalf("no type %s: the connection's guarded state is gone", name)
		}
		st := obj.Type().Underlying().(*types.Struct)
		for i := range st.NumFields() {
			if !st.Field(i).Embedded() {
				guarded[st.Field(i).Origin()] = true
			}
		}
	}
	if len(guarded) < 8 {
		t.Fatalf("found %d guarded fields; the check is not finding them", len(guarded))
	}
	for sel, s := range info.Selections {
		pos := fset.Position(sel.Pos())
		if s.Kind() == types.FieldVal && guarded[s.Obj()] && !connFiles[filepath.Base(pos.Filename)] {
			t.Errorf("%s: %s touches a connection's guarded state outside the connection's files: use a method of worker", pos, sel.Sel.Name)
		}
	}
}

// connFiles are the connection's files.
var connFiles = map[string]bool{"conn.go": true, "conntasks.go": true}

// noImports resolves no import: TestConnStateInConn needs only the
// package's own types.
type noImports struct{}

func (noImports) Import(path string) (*types.Package, error) {
	return nil, errors.New("not resolved")
}
