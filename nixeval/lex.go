package nixeval

import (
	"strconv"
	"strings"
)

// token kinds
const (
	tEOF = iota
	tID
	tInt
	tFloat
	tPath
	tHPath
	tSPath
	tOp     // punctuation and operators; text in tok.s
	tStr    // opening "
	tIndStr // opening ''
	tKeyword
	tURI
)

func isURIScheme(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return s != ""
}

func isURIChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("%/?:@&=+$,-_.!~*'", c) >= 0
}

type token struct {
	kind int
	s    string
	off  int
	f    float64
}

var keywords = map[string]bool{"if": true, "then": true, "else": true, "assert": true, "with": true, "let": true, "in": true, "rec": true, "inherit": true, "or": true}

func isPathChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' || c == '+'
}

func isIDStart(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' }
func isIDChar(c byte) bool  { return isIDStart(c) || c >= '0' && c <= '9' || c == '\'' || c == '-' }
func isDigit(c byte) bool   { return c >= '0' && c <= '9' }

// skip skips whitespace and comments.
func (p *parser) skip() error {
	for p.off < len(p.t) {
		c := p.t[p.off]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			p.off++
		case c == '#':
			for p.off < len(p.t) && p.t[p.off] != '\n' {
				p.off++
			}
		case c == '/' && p.off+1 < len(p.t) && p.t[p.off+1] == '*':
			end := strings.Index(p.t[p.off+2:], "*/")
			if end < 0 {
				return errorf(p.at(p.off), "syntax error, unterminated comment, expecting '*/'")
			}
			p.off += 2 + end + 2
		default:
			return nil
		}
	}
	return nil
}

// pathLen returns the length of a path literal at off, or 0.
func (p *parser) pathLen(off int) int {
	i := off
	for i < len(p.t) && isPathChar(p.t[i]) {
		i++
	}
	n := 0
	for i < len(p.t) && p.t[i] == '/' {
		j := i + 1
		for j < len(p.t) && isPathChar(p.t[j]) {
			j++
		}
		if j == i+1 {
			break
		}
		i = j
		n++
	}
	if n == 0 {
		return 0
	}
	return i - off
}

func (p *parser) lex() (token, error) {
	if err := p.skip(); err != nil {
		return token{}, err
	}
	start := p.off
	if p.off >= len(p.t) {
		return token{kind: tEOF, off: start}, nil
	}
	t := p.t
	c := t[p.off]
	if c == '"' {
		p.off++
		return token{kind: tStr, s: `"`, off: start}, nil
	}
	if c == '\'' && p.off+1 < len(t) && t[p.off+1] == '\'' {
		p.off += 2
		// An opening '' followed by spaces and a newline drops them.
		j := p.off
		for j < len(t) && t[j] == ' ' {
			j++
		}
		if j < len(t) && t[j] == '\n' {
			p.off = j + 1
		}
		return token{kind: tIndStr, s: "''", off: start}, nil
	}
	if c == '~' && p.off+1 < len(t) && t[p.off+1] == '/' {
		if n := p.pathLen(p.off + 1); n > 0 {
			p.off += 1 + n
			return token{kind: tHPath, s: t[start:p.off], off: start}, nil
		}
	}
	if c == '<' {
		j := p.off + 1
		for j < len(t) && (isPathChar(t[j]) || t[j] == '/') {
			j++
		}
		if j > p.off+1 && j < len(t) && t[j] == '>' && t[p.off+1] != '/' {
			p.off = j + 1
			return token{kind: tSPath, s: t[start+1 : j], off: start}, nil
		}
	}
	if n := p.pathLen(p.off); n > 0 {
		p.off += n
		if p.off < len(t) && t[p.off] == '$' && p.off+1 < len(t) && t[p.off+1] == '{' {
			return token{}, unsupported(p.at(start), "path interpolation")
		}
		if p.off < len(t) && t[p.off] == '/' && (p.off+1 >= len(t) || t[p.off+1] != '/' && t[p.off+1] != '*') {
			return token{}, errorf(p.at(start), "path '%s/' has a trailing slash", t[start:p.off])
		}
		return token{kind: tPath, s: t[start:p.off], off: start}, nil
	}
	// numbers: FLOAT (([1-9][0-9]*\.[0-9]*)|(0?\.[0-9]+))([Ee][+-]?[0-9]+)?, INT [0-9]+
	if isDigit(c) || c == '.' && p.off+1 < len(t) && isDigit(t[p.off+1]) {
		j := p.off
		for j < len(t) && isDigit(t[j]) {
			j++
		}
		isFloat := false
		intPart := t[p.off:j]
		if j < len(t) && t[j] == '.' && (intPart == "" || intPart == "0" || intPart[0] != '0') {
			if !(intPart == "0" || intPart == "") || j+1 < len(t) && isDigit(t[j+1]) {
				isFloat = true
				j++
				for j < len(t) && isDigit(t[j]) {
					j++
				}
				if j < len(t) && (t[j] == 'e' || t[j] == 'E') {
					k := j + 1
					if k < len(t) && (t[k] == '+' || t[k] == '-') {
						k++
					}
					if k < len(t) && isDigit(t[k]) {
						for k < len(t) && isDigit(t[k]) {
							k++
						}
						j = k
					}
				}
			}
		}
		p.off = j
		s := t[start:j]
		if isFloat {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return token{}, errorf(p.at(start), "invalid float '%s'", s)
			}
			return token{kind: tFloat, s: s, off: start, f: f}, nil
		}
		if _, err := strconv.ParseInt(s, 10, 64); err != nil {
			return token{}, errorf(p.at(start), "invalid integer '%s'", s)
		}
		return token{kind: tInt, s: s, off: start}, nil
	}
	if isIDStart(c) {
		j := p.off
		for j < len(t) && isIDChar(t[j]) {
			j++
		}
		p.off = j
		s := t[start:j]
		// A URI literal (https://x, or x:x) is a string; flex takes the
		// longest match, so it wins over the identifier.
		if j < len(t) && t[j] == ':' {
			k := j + 1
			for k < len(t) && isURIChar(t[k]) {
				k++
			}
			if k > j+1 && isURIScheme(s) {
				p.off = k
				return token{kind: tURI, s: t[start:k], off: start}, nil
			}
		}
		if keywords[s] {
			return token{kind: tKeyword, s: s, off: start}, nil
		}
		return token{kind: tID, s: s, off: start}, nil
	}
	if p.off+1 < len(t) {
		two := t[p.off : p.off+2]
		switch two {
		case "==", "!=", "<=", ">=", "&&", "||", "->", "//", "++", "${":
			p.off += 2
			return token{kind: tOp, s: two, off: start}, nil
		case "..":
			if p.off+2 < len(t) && t[p.off+2] == '.' {
				p.off += 3
				return token{kind: tOp, s: "...", off: start}, nil
			}
		}
	}
	if strings.IndexByte("{}[]()=;:,.?@+-*/<>!", c) >= 0 {
		p.off++
		return token{kind: tOp, s: string(c), off: start}, nil
	}
	return token{}, errorf(p.at(start), "syntax error, unexpected character %q", c)
}

func (p *parser) peek() (token, error) {
	if !p.hasPeek {
		tk, err := p.lex()
		if err != nil {
			return tk, err
		}
		p.peeked, p.hasPeek = tk, true
	}
	return p.peeked, nil
}

func (p *parser) next() (token, error) {
	tk, err := p.peek()
	p.hasPeek = false
	return tk, err
}

// save and restore allow looking ahead more than one token.
type pstate struct {
	off     int
	peeked  token
	hasPeek bool
}

func (p *parser) save() pstate     { return pstate{p.off, p.peeked, p.hasPeek} }
func (p *parser) restore(s pstate) { p.off, p.peeked, p.hasPeek = s.off, s.peeked, s.hasPeek }
