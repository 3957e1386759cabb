package rollout

import (
	"fmt"
	"path"
	"strings"
)

// globs are compiled path.Match patterns: most are literal names or a prefix with "*", which
// compare as strings; the rest go through path.Match. A decision tries every override and
// exception of a rule (BENCHMARKS.md §10), so this is on the request path.
type globs []glob

type glob struct {
	kind    globKind
	pattern string // the glob as written
	part    string // the literal, or the prefix or suffix around one "*"
}

type globKind uint8

const (
	literal globKind = iota
	anything
	prefix // part then "*"
	suffix // "*" then part
	other  // path.Match
)

func compileGlobs(list []string) (globs, error) {
	out := make(globs, 0, len(list))
	for _, p := range list {
		if p == "" {
			return nil, fmt.Errorf("an entry is empty")
		}
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("%q is not a valid glob", p)
		}
		g := glob{kind: other, pattern: p}
		switch meta := strings.IndexAny(p, `*?[\`); {
		case meta < 0:
			g.kind, g.part = literal, p
		case p == "*":
			g.kind = anything
		case meta == len(p)-1 && p[meta] == '*':
			g.kind, g.part = prefix, p[:meta]
		case meta == 0 && p[0] == '*' && !strings.ContainsAny(p[1:], `*?[\`):
			g.kind, g.part = suffix, p[1:]
		}
		out = append(out, g)
	}
	return out, nil
}

// match reports whether s matches one of the globs, as path.Match would ("*" does not match
// a "/").
func (gs globs) match(s string) bool {
	for i := range gs {
		g := &gs[i]
		var ok bool
		switch g.kind {
		case literal:
			ok = s == g.part
		case anything:
			ok = !strings.Contains(s, "/")
		case prefix:
			ok = strings.HasPrefix(s, g.part) && !strings.Contains(s[len(g.part):], "/")
		case suffix:
			ok = strings.HasSuffix(s, g.part) && !strings.Contains(s[:len(s)-len(g.part)], "/")
		default:
			ok, _ = path.Match(g.pattern, s)
		}
		if ok {
			return true
		}
	}
	return false
}

// strings are the globs as written.
func (gs globs) strings() []string {
	out := make([]string, len(gs))
	for i, g := range gs {
		out[i] = g.pattern
	}
	return out
}
