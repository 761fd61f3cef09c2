package migrate

import "strings"

// luaClasses are Lua's character classes as JavaScript regular expression
// set contents, for ASCII text as Lua's C locale has them.
//
// TODO(migrate): %s and %S become \s and \S, which also count Unicode
// spaces (U+00A0, U+2028...) as spaces where Lua does not.
var luaClasses = map[byte]string{
	'a': "A-Za-z", 'd': "0-9", 'l': "a-z", 's': `\s`, 'u': "A-Z",
	'w': "A-Za-z0-9", 'x': "0-9A-Fa-f", 'p': "!-\\/:-@\\[-`{-~", 'c': `\x00-\x1f\x7f`,
}

// luaMagic are the characters that make a Lua pattern more than text.
const luaMagic = "^$*+?.([%-"

// isPlain reports whether pattern matches only itself.
func isPlain(pattern string) bool { return !strings.ContainsAny(pattern, luaMagic) }

// jsRegexp converts a Lua pattern to the source of a JavaScript regular
// expression, for the patterns rules split strings with ("%S+",
// "[^,]+", "[%w_]+"). It refuses what it cannot convert exactly:
// captures, %b, %f and back references.
func jsRegexp(pattern string) (string, bool) {
	for i := 0; i < len(pattern); i++ {
		if pattern[i] >= 0x80 {
			return "", false // Lua matches bytes, JavaScript UTF-16 units
		}
	}
	var b strings.Builder
	for i := 0; i < len(pattern); {
		var item string
		var ok bool
		switch c := pattern[i]; {
		case c == '^' && i == 0:
			b.WriteByte('^')
			i++
			continue
		case c == '$' && i == len(pattern)-1:
			b.WriteByte('$')
			i++
			continue
		case c == '(' || c == ')':
			return "", false
		case c == '%':
			item, i, ok = classItem(pattern, i)
		case c == '[':
			item, i, ok = setItem(pattern, i)
		case c == '.':
			item, i, ok = `[\s\S]`, i+1, true
		default:
			item, i, ok = escapeRegexp(c), i+1, true
		}
		if !ok {
			return "", false
		}
		b.WriteString(item)
		if i < len(pattern) {
			switch pattern[i] {
			case '*', '+', '?':
				b.WriteByte(pattern[i])
				i++
			case '-':
				b.WriteString("*?")
				i++
			}
		}
	}
	return b.String(), true
}

// classItem converts %x at i.
func classItem(p string, i int) (string, int, bool) {
	if i+1 >= len(p) {
		return "", 0, false
	}
	c := p[i+1]
	lower := c | 0x20
	set, isClass := luaClasses[lower]
	switch {
	case isClass && c == 's':
		return `\s`, i + 2, true
	case isClass && c == 'S':
		return `\S`, i + 2, true
	case isClass && c == lower:
		return "[" + set + "]", i + 2, true
	case isClass:
		return "[^" + set + "]", i + 2, true
	case c >= '0' && c <= '9', lower >= 'a' && lower <= 'z':
		return "", 0, false // back references, %b, %f, %z
	}
	return escapeRegexp(c), i + 2, true
}

// setItem converts the set [...] at i.
func setItem(p string, i int) (string, int, bool) {
	var b strings.Builder
	b.WriteByte('[')
	j := i + 1
	if j < len(p) && p[j] == '^' {
		b.WriteByte('^')
		j++
	}
	for first := true; j < len(p); first = false {
		c := p[j]
		switch {
		case c == ']' && !first:
			b.WriteByte(']')
			return b.String(), j + 1, true
		case c == '%' && j+1 < len(p):
			set, isClass := luaClasses[p[j+1]]
			switch {
			case isClass:
				b.WriteString(set)
			case p[j+1] == 'S':
				b.WriteString(`\S`)
			case p[j+1]|0x20 >= 'a' && p[j+1]|0x20 <= 'z':
				return "", 0, false // a complemented class inside a set
			default:
				b.WriteString(escapeSet(p[j+1]))
			}
			j += 2
		case j+2 < len(p) && p[j+1] == '-' && p[j+2] != ']':
			b.WriteString(escapeSet(c) + "-" + escapeSet(p[j+2]))
			j += 3
		default:
			b.WriteString(escapeSet(c))
			j++
		}
	}
	return "", 0, false
}

func escapeRegexp(c byte) string {
	if strings.IndexByte(`\^$.|?*+()[]{}/-`, c) >= 0 {
		return `\` + string(c)
	}
	return regexpByte(c)
}

func escapeSet(c byte) string {
	if strings.IndexByte(`\]^-[/`, c) >= 0 {
		return `\` + string(c)
	}
	return regexpByte(c)
}

// regexpByte writes control bytes as escapes.
func regexpByte(c byte) string {
	if c < 0x20 || c == 0x7f {
		const hex = "0123456789abcdef"
		return `\x` + string(hex[c>>4]) + string(hex[c&15])
	}
	return string(c)
}
