package migrate

import "strings"

// comment is one line of a Lua comment, kept so that the generated code
// carries the rule author's explanations. gopher-lua's parser drops
// comments, so they are read from the source beside it.
type comment struct {
	line int
	text string // without the leading --, trimmed on the right
}

// scanComments returns the comments of a Lua source, one entry per line
// of text, skipping string literals so that "--" inside a string is not
// taken for a comment. The source has already parsed, so every string
// and comment is closed.
func scanComments(src []byte) []comment {
	s := string(src)
	var out []comment
	line := 1
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == '\n':
			line++
			i++
		case c == '\'' || c == '"':
			i, line = skipQuoted(s, i, line)
		case c == '[' && longBracket(s, i) >= 0:
			level := longBracket(s, i)
			body, end := longBody(s, i, level)
			line += strings.Count(body, "\n")
			i = end
		case c == '-' && strings.HasPrefix(s[i:], "--"):
			var text string
			text, i = commentText(s, i+2)
			for n, l := range strings.Split(text, "\n") {
				out = append(out, comment{line: line + n, text: strings.TrimRight(l, " \t\r")})
			}
			line += strings.Count(text, "\n")
		default:
			i++
		}
	}
	return out
}

// commentText returns the text of the comment whose "--" ends at i, and
// where the comment ends.
func commentText(s string, i int) (string, int) {
	if level := longBracket(s, i); level >= 0 {
		body, end := longBody(s, i, level)
		open := level + 2
		close := level + 2
		if len(body) >= open+close {
			body = body[open : len(body)-close]
		}
		return strings.TrimPrefix(body, "\n"), end
	}
	end := strings.IndexByte(s[i:], '\n')
	if end < 0 {
		return s[i:], len(s)
	}
	return s[i : i+end], i + end
}

// skipQuoted returns the index after the quoted string starting at i and
// the line it ends on.
func skipQuoted(s string, i, line int) (int, int) {
	quote := s[i]
	for i++; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
			if i < len(s) && s[i] == '\n' {
				line++
			}
		case '\n':
			line++
		case quote:
			return i + 1, line
		}
	}
	return i, line
}

// longBracket returns the level of the long bracket "[==[" opening at i,
// or -1 when there is none.
func longBracket(s string, i int) int {
	if i >= len(s) || s[i] != '[' {
		return -1
	}
	level := 0
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '=':
			level++
		case '[':
			return level
		default:
			return -1
		}
	}
	return -1
}

// longBody returns the text of the long bracket opening at i, brackets
// included, and the index after it.
func longBody(s string, i, level int) (string, int) {
	closing := "]" + strings.Repeat("=", level) + "]"
	start := i + level + 2
	end := strings.Index(s[start:], closing)
	if end < 0 {
		return s[i:], len(s)
	}
	end += start + len(closing)
	return s[i:end], end
}
