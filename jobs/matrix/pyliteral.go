package matrix

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// pyTuple is a Python tuple of integers, such as a .npy shape.
type pyTuple []int64

// maxPyDepth bounds nesting in a header, so that a crafted one cannot
// recurse deeply; real headers nest at most three levels (a structured
// dtype's list of tuples).
const maxPyDepth = 8

// parsePythonDict parses the Python dict literal of a .npy header, the
// subset that numpy.lib.format writes: string keys; values that are strings,
// True, False, None, integers, and tuples or lists of those. A tuple of
// integers is a pyTuple; any other tuple or list is a []any.
func parsePythonDict(text string) (map[string]any, error) {
	p := &pyParser{text: text}
	value, err := p.value(0)
	if err != nil {
		return nil, err
	}
	dict, ok := value.(map[string]any)
	if !ok {
		return nil, errors.New("not a dict")
	}
	p.skipSpace()
	if p.pos != len(p.text) {
		return nil, fmt.Errorf("unexpected %q after the dict", p.rest())
	}
	return dict, nil
}

type pyParser struct {
	text string
	pos  int
}

func (p *pyParser) skipSpace() {
	for p.pos < len(p.text) && strings.IndexByte(" \t\r\n", p.text[p.pos]) >= 0 {
		p.pos++
	}
}

// rest returns a short excerpt of the unparsed text for messages.
func (p *pyParser) rest() string {
	rest := p.text[p.pos:]
	if len(rest) > 20 {
		rest = rest[:20] + "…"
	}
	return rest
}

func (p *pyParser) value(depth int) (any, error) {
	if depth > maxPyDepth {
		return nil, errors.New("nested too deeply")
	}
	p.skipSpace()
	if p.pos == len(p.text) {
		return nil, errors.New("unexpected end")
	}
	switch c := p.text[p.pos]; {
	case c == '{':
		return p.dict(depth)
	case c == '(' || c == '[':
		return p.sequence(depth)
	case c == '\'' || c == '"':
		return p.str()
	case c == '-' || c >= '0' && c <= '9':
		return p.integer()
	default:
		for _, word := range []struct {
			text  string
			value any
		}{{"True", true}, {"False", false}, {"None", nil}} {
			if strings.HasPrefix(p.text[p.pos:], word.text) {
				p.pos += len(word.text)
				return word.value, nil
			}
		}
		return nil, fmt.Errorf("unexpected %q", p.rest())
	}
}

// expect consumes c after optional space, or reports false.
func (p *pyParser) expect(c byte) bool {
	p.skipSpace()
	if p.pos < len(p.text) && p.text[p.pos] == c {
		p.pos++
		return true
	}
	return false
}

func (p *pyParser) dict(depth int) (map[string]any, error) {
	p.pos++ // '{'
	dict := map[string]any{}
	for {
		if p.expect('}') {
			return dict, nil
		}
		p.skipSpace()
		if p.pos == len(p.text) || (p.text[p.pos] != '\'' && p.text[p.pos] != '"') {
			return nil, fmt.Errorf("want a string key at %q", p.rest())
		}
		key, err := p.str()
		if err != nil {
			return nil, err
		}
		if !p.expect(':') {
			return nil, fmt.Errorf("want ':' after key %q", excerpt(key))
		}
		value, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		if _, dup := dict[key]; dup {
			return nil, fmt.Errorf("duplicate key %q", excerpt(key))
		}
		dict[key] = value
		if !p.expect(',') {
			if p.expect('}') {
				return dict, nil
			}
			return nil, fmt.Errorf("want ',' or '}' at %q", p.rest())
		}
	}
}

func (p *pyParser) sequence(depth int) (any, error) {
	open := p.text[p.pos]
	closing := byte(')')
	if open == '[' {
		closing = ']'
	}
	p.pos++
	var items []any
	for {
		if p.expect(closing) {
			break
		}
		item, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		items = append(items, item)
		if !p.expect(',') {
			if p.expect(closing) {
				break
			}
			return nil, fmt.Errorf("want ',' or '%c' at %q", closing, p.rest())
		}
	}
	if open == '(' {
		ints := make(pyTuple, 0, len(items))
		for _, item := range items {
			n, ok := item.(int64)
			if !ok {
				return items, nil
			}
			ints = append(ints, n)
		}
		return ints, nil
	}
	return items, nil
}

func (p *pyParser) str() (string, error) {
	quote := p.text[p.pos]
	p.pos++
	var b strings.Builder
	for p.pos < len(p.text) {
		c := p.text[p.pos]
		p.pos++
		switch c {
		case quote:
			return b.String(), nil
		case '\\':
			if p.pos == len(p.text) {
				return "", errors.New("unterminated string")
			}
			b.WriteByte(p.text[p.pos])
			p.pos++
		default:
			b.WriteByte(c)
		}
	}
	return "", errors.New("unterminated string")
}

func (p *pyParser) integer() (int64, error) {
	start := p.pos
	if p.text[p.pos] == '-' {
		p.pos++
	}
	for p.pos < len(p.text) && p.text[p.pos] >= '0' && p.text[p.pos] <= '9' {
		p.pos++
	}
	n, err := strconv.ParseInt(p.text[start:p.pos], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("bad integer %q", excerpt(p.text[start:p.pos]))
	}
	// Python 2 wrote shapes as (3L, 4L).
	if p.pos < len(p.text) && p.text[p.pos] == 'L' {
		p.pos++
	}
	return n, nil
}
