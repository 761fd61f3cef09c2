package migrate

import (
	"strings"

	"github.com/yuin/gopher-lua/ast"
)

// writer builds generated source line by line: indentation, the rule's
// comments where they were, and a TODO(migrate) comment above each
// statement with an issue.
type writer struct {
	buf      *strings.Builder
	depth    int
	comment  string // "//" or "--"
	comments []comment
	next     int // first comment not yet written

	file    string
	shared  map[ast.Stmt][]Issue // issues of both translations, by statement
	pending *[]Issue             // issues of the statement being written
	issues  []Issue              // every issue written
}

func newWriter(file, commentPrefix string, comments []comment, shared map[ast.Stmt][]Issue) *writer {
	return &writer{
		buf: new(strings.Builder), comment: commentPrefix, comments: comments,
		file: file, shared: shared,
	}
}

// line writes one line at the current depth.
func (w *writer) line(s string) {
	if s == "" {
		w.buf.WriteByte('\n')
		return
	}
	w.buf.WriteString(strings.Repeat("  ", w.depth))
	w.buf.WriteString(s)
	w.buf.WriteByte('\n')
}

// commentsBefore writes the rule's comments from lines before line.
func (w *writer) commentsBefore(line int) {
	for w.next < len(w.comments) && w.comments[w.next].line < line {
		text := w.comments[w.next].text
		if text == "" || strings.HasPrefix(text, " ") {
			w.line(w.comment + text)
		} else {
			w.line(w.comment + " " + text)
		}
		w.next++
	}
}

// issue records an issue of the statement being written.
func (w *writer) issue(n ast.PositionHolder, construct, reason string) {
	*w.pending = append(*w.pending, Issue{File: w.file, Line: n.Line(), Construct: construct, Reason: reason})
}

// stmt writes what render writes for s, after the comments before s and
// a TODO(migrate) line for each of s's issues, those known beforehand
// and those render finds.
func (w *writer) stmt(s ast.Stmt, render func()) {
	w.commentsBefore(s.Line())
	w.section(w.shared[s], render)
}

// section writes what render writes, preceded by TODO(migrate) lines
// for known and the issues render finds.
func (w *writer) section(known []Issue, render func()) {
	outerBuf, outerPending := w.buf, w.pending
	w.buf = new(strings.Builder)
	found := append([]Issue(nil), known...)
	w.pending = &found
	render()
	body := w.buf.String()
	w.buf, w.pending = outerBuf, outerPending

	found = dedupe(found)
	for _, is := range found {
		w.line(w.comment + " TODO(migrate): line " + itoa(is.Line) + ": " + is.Construct + ": " + is.Reason)
	}
	w.buf.WriteString(body)
	w.issues = append(w.issues, found...)
}

// dedupe drops the repeats of an issue: a construct used twice in one
// statement is reported once.
func dedupe(issues []Issue) []Issue {
	type key struct {
		line              int
		construct, reason string
	}
	seen := map[key]bool{}
	out := issues[:0]
	for _, is := range issues {
		k := key{is.Line, is.Construct, is.Reason}
		if !seen[k] {
			seen[k] = true
			out = append(out, is)
		}
	}
	return out
}

// nested returns what render writes one level deeper, for a function
// written inside an expression.
func (w *writer) nested(render func()) string {
	outer := w.buf
	w.buf = new(strings.Builder)
	w.depth++
	render()
	w.depth--
	body := w.buf.String()
	w.buf = outer
	return body
}

// indent returns the indentation of the current depth.
func (w *writer) indent() string { return strings.Repeat("  ", w.depth) }
