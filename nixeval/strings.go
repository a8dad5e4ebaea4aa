package nixeval

import "strings"

// str parses a "..." string after its opening quote.
func (p *parser) str(start int) (*StrExpr, error) {
	t := p.t
	// Fast path: no escape and no interpolation before the closing quote.
	if i := strings.IndexAny(t[p.off:], "\"\\$"); i >= 0 && t[p.off+i] == '"' {
		lit := t[p.off : p.off+i]
		p.off += i + 1
		return &StrExpr{P: p.at(start), Parts: []any{lit}}, nil
	}
	s := &StrExpr{P: p.at(start)}
	var b strings.Builder
	for {
		if p.off >= len(t) {
			return nil, errorf(p.at(start), "syntax error, unterminated string, expecting '\"'")
		}
		c := t[p.off]
		switch {
		case c == '"':
			p.off++
			if b.Len() > 0 || len(s.Parts) == 0 {
				s.Parts = append(s.Parts, b.String())
			}
			return s, nil
		case c == '\\' && p.off+1 < len(t):
			switch e := t[p.off+1]; e {
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			default:
				b.WriteByte(e)
			}
			p.off += 2
		case c == '$' && p.off+1 < len(t) && t[p.off+1] == '{':
			if b.Len() > 0 {
				s.Parts = append(s.Parts, b.String())
				b.Reset()
			}
			if err := p.interp(s); err != nil {
				return nil, err
			}
		case c == '$' && p.off+1 < len(t) && t[p.off+1] == '$':
			b.WriteString("$$")
			p.off += 2
		default:
			b.WriteByte(c)
			p.off++
		}
	}
}

// interp parses ${ expr } at p.off into s.
func (p *parser) interp(s *StrExpr) error {
	p.off += 2
	p.hasPeek = false
	e, err := p.expr()
	if err != nil {
		return err
	}
	if _, err := p.expect("}"); err != nil {
		return err
	}
	s.Parts = append(s.Parts, e)
	return nil
}

type indPart struct {
	lit  string
	expr Expr
}

// indStr parses an indented ”...” string after its opening quotes.
func (p *parser) indStr(start int) (*StrExpr, error) {
	var parts []indPart
	var b strings.Builder
	flush := func() {
		if b.Len() > 0 {
			parts = append(parts, indPart{lit: b.String()})
			b.Reset()
		}
	}
	t := p.t
	for {
		if p.off >= len(t) {
			return nil, errorf(p.at(start), "syntax error, unterminated indented string, expecting \"''\"")
		}
		r := t[p.off:]
		switch {
		case strings.HasPrefix(r, "'''"):
			b.WriteString("''")
			p.off += 3
		case strings.HasPrefix(r, "''$"):
			b.WriteByte('$')
			p.off += 3
		case strings.HasPrefix(r, "''\\") && len(r) > 3:
			switch e := r[3]; e {
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			default:
				b.WriteByte(e)
			}
			p.off += 4
		case strings.HasPrefix(r, "''"):
			p.off += 2
			flush()
			return &StrExpr{P: p.at(start), Parts: stripIndent(parts)}, nil
		case strings.HasPrefix(r, "${"):
			flush()
			tmp := &StrExpr{}
			if err := p.interp(tmp); err != nil {
				return nil, err
			}
			parts = append(parts, indPart{expr: tmp.Parts[0].(Expr)})
		case strings.HasPrefix(r, "$$"):
			b.WriteString("$$")
			p.off += 2
		default:
			b.WriteByte(r[0])
			p.off++
		}
	}
}

// stripIndent removes the common indentation of an indented string the
// way Nix does: only spaces count, blank lines are ignored, an
// interpolation counts as text, and a last line of only spaces goes.
func stripIndent(parts []indPart) []any {
	const inf = 1 << 30
	minIndent, cur, atStart := inf, 0, true
	for _, pt := range parts {
		if pt.expr != nil {
			if atStart {
				atStart = false
				if cur < minIndent {
					minIndent = cur
				}
			}
			continue
		}
		for i := 0; i < len(pt.lit); i++ {
			c := pt.lit[i]
			if atStart {
				switch c {
				case ' ':
					cur++
				case '\n':
					cur = 0
				default:
					atStart = false
					if cur < minIndent {
						minIndent = cur
					}
				}
			} else if c == '\n' {
				atStart, cur = true, 0
			}
		}
	}
	if minIndent == inf {
		minIndent = 0
	}
	var out []any
	atStart, dropped := true, 0
	for i, pt := range parts {
		if pt.expr != nil {
			atStart, dropped = false, 0
			out = append(out, pt.expr)
			continue
		}
		var b strings.Builder
		for j := 0; j < len(pt.lit); j++ {
			c := pt.lit[j]
			if atStart {
				switch c {
				case ' ':
					if dropped >= minIndent {
						b.WriteByte(c)
					}
					dropped++
				case '\n':
					dropped = 0
					b.WriteByte(c)
				default:
					atStart, dropped = false, 0
					b.WriteByte(c)
				}
			} else {
				b.WriteByte(c)
				if c == '\n' {
					atStart = true
				}
			}
		}
		s := b.String()
		if i == len(parts)-1 {
			if k := strings.LastIndexByte(s, '\n'); k >= 0 && strings.Trim(s[k:], " \n") == "" {
				s = s[:k+1]
			}
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		out = append(out, "")
	}
	return out
}
