package migrate

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/ast"
	"github.com/yuin/gopher-lua/parse"
)

// The output formats of Write.
const (
	// FormatAuth0 is the Auth0 Deploy CLI's directory layout of
	// JavaScript actions.
	FormatAuth0 = "auth0"
	// FormatLua is one Lua action a rule, for rulesgate serve --actions.
	FormatLua = "lua"
	// FormatBoth is FormatAuth0 with the Lua actions in a lua directory.
	FormatBoth = "both"
)

// Issue is a construct of a rule that a translation cannot keep as the
// rule had it.
type Issue struct {
	// File is the rule's file name.
	File string
	// Line is the line of the construct in the rule.
	Line int
	// Construct is the construct as the rule writes it.
	Construct string
	// Reason says what differs and, where there is one, what to do.
	Reason string
	// JSOnly is set when only the JavaScript action is affected: the Lua
	// action runs the construct as the rule did.
	JSOnly bool
}

// Translation is one rule as actions.
type Translation struct {
	// Name is the action's name: the rule's file name without .lua.
	Name string
	// File is the rule's file name.
	File string
	// JS is the Auth0 action's code.js.
	JS string
	// Lua is the Lua action for rulesgate.
	Lua string
	// Secrets are the configuration keys the rule reads, which the Auth0
	// action reads as secrets; sorted.
	Secrets []string
	// Issues are the constructs the translations do not keep, by line.
	Issues []Issue
}

// Complete reports whether the translation in format (FormatAuth0 or
// FormatLua) keeps everything the rule did.
func (t *Translation) Complete(format string) bool {
	for _, is := range t.Issues {
		if format == FormatAuth0 || !is.JSOnly {
			return false
		}
	}
	return true
}

// Translate translates the rule src, read from the file name. A rule
// that does not compile, or that does not end with return
// function(user, context, callback) ... end, is an error naming the file
// and the line.
func Translate(name string, src []byte) (*Translation, error) {
	file := path.Base(name)
	chunk, err := parse.Parse(bytes.NewReader(src), file)
	if err != nil {
		return nil, fmt.Errorf("migrate %s: %w", file, syntaxError(err))
	}
	if _, err := lua.Compile(chunk, file); err != nil {
		return nil, fmt.Errorf("migrate %s: %w", file, syntaxError(err))
	}
	prelude, ret, err := ruleFunction(chunk)
	if err != nil {
		return nil, fmt.Errorf("migrate %s: %w", file, err)
	}

	a := analyze(file, prelude, ret)
	shared := a.check()
	comments := scanComments(src)
	luaCode, _ := printLua(a, comments, shared)
	jsCode, secrets, issues := printJS(a, comments, shared)
	sortIssues(issues)
	issues = dedupe(issues)
	return &Translation{
		Name: strings.TrimSuffix(file, ".lua"), File: file,
		JS: jsCode, Lua: luaCode, Secrets: secrets, Issues: issues,
	}, nil
}

// syntaxError rewrites the parser's and compiler's errors as "line N:
// message".
func syntaxError(err error) error {
	var perr *parse.Error
	if errors.As(err, &perr) {
		if perr.Pos.Line == parse.EOF {
			return fmt.Errorf("at the end of the file: %s", perr.Message)
		}
		return fmt.Errorf("line %d: %s near %q", perr.Pos.Line, perr.Message, perr.Token)
	}
	var cerr *lua.CompileError
	if errors.As(err, &cerr) {
		return fmt.Errorf("line %d: %s", cerr.Line, cerr.Message)
	}
	return err
}

// ruleFunction splits a rule file into what runs before its last
// statement and that statement, return function(user, context, callback).
func ruleFunction(chunk []ast.Stmt) ([]ast.Stmt, *ast.ReturnStmt, error) {
	line := 1
	if len(chunk) > 0 {
		last := chunk[len(chunk)-1]
		line = last.Line()
		if ret, ok := last.(*ast.ReturnStmt); ok && len(ret.Exprs) == 1 {
			if _, ok := ret.Exprs[0].(*ast.FunctionExpr); ok {
				return chunk[:len(chunk)-1], ret, nil
			}
		}
	}
	return nil, nil, fmt.Errorf("line %d: the file does not end with "+
		"return function(user, context, callback) ... end", line)
}

// TranslateFS translates every .lua file directly inside dir of fsys, in
// file-name order: the order the rules run in.
func TranslateFS(fsys fs.FS, dir string) ([]*Translation, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })

	var out []*Translation
	for _, e := range entries {
		if e.IsDir() || path.Ext(e.Name()) != ".lua" {
			continue
		}
		src, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("migrate: %w", err)
		}
		t, err := Translate(e.Name(), src)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}
