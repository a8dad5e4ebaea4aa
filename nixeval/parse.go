package nixeval

import (
	"path/filepath"
	"strconv"
	"strings"
)

// maxParseDepth bounds nesting so hostile input cannot exhaust the stack.
const maxParseDepth = 1000

type parser struct {
	src     *Source
	t       string
	off     int
	peeked  token // the lookahead token, when hasPeek
	hasPeek bool
	depth   int
}

// Parse parses the Nix expression in text; name and dir are used for
// positions and for relative paths.
func Parse(name, dir, text string) (Expr, error) {
	p := &parser{src: &Source{Name: name, Dir: dir, Text: text}, t: text}
	e, err := p.expr()
	if err != nil {
		return nil, err
	}
	if tk, err := p.peek(); err != nil {
		return nil, err
	} else if tk.kind != tEOF {
		return nil, p.unexpected(tk, "end of file")
	}
	if err := resolve(e, nil); err != nil {
		return nil, err
	}
	return e, nil
}

func (p *parser) at(off int) Pos { return Pos{Src: p.src, Off: off} }

func (p *parser) unexpected(tk token, want string) error {
	got := "'" + tk.s + "'"
	switch tk.kind {
	case tEOF:
		got = "end of file"
	case tStr:
		got = "a string"
	case tIndStr:
		got = "an indented string"
	}
	return errorf(p.at(tk.off), "syntax error, unexpected %s, expecting %s", got, want)
}

func (p *parser) isOp(tk token, s string) bool { return tk.kind == tOp && tk.s == s }
func (p *parser) isKw(tk token, s string) bool { return tk.kind == tKeyword && tk.s == s }

func (p *parser) expect(s string) (token, error) {
	tk, err := p.next()
	if err != nil {
		return tk, err
	}
	if (tk.kind == tOp || tk.kind == tKeyword) && tk.s == s {
		return tk, nil
	}
	return tk, p.unexpected(tk, "'"+s+"'")
}

func (p *parser) enter(off int) error {
	p.depth++
	if p.depth > maxParseDepth {
		return limitf(p.at(off), "expression nested too deeply (more than %d levels)", maxParseDepth)
	}
	return nil
}

func (p *parser) expr() (Expr, error) {
	tk, err := p.peek()
	if err != nil {
		return nil, err
	}
	if err := p.enter(tk.off); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	pos := p.at(tk.off)
	switch {
	case tk.kind == tID:
		// x: body, or x @ { ... }: body
		st := p.save()
		p.next()
		nt, err := p.peek()
		if err != nil {
			return nil, err
		}
		if p.isOp(nt, ":") {
			p.next()
			body, err := p.expr()
			if err != nil {
				return nil, err
			}
			return &LambdaExpr{P: pos, Arg: tk.s, Body: body}, nil
		}
		if p.isOp(nt, "@") {
			p.next()
			if _, err := p.expect("{"); err != nil {
				return nil, err
			}
			f, err := p.formals()
			if err != nil {
				return nil, err
			}
			if _, err := p.expect(":"); err != nil {
				return nil, err
			}
			body, err := p.expr()
			if err != nil {
				return nil, err
			}
			return &LambdaExpr{P: pos, Arg: tk.s, Formals: f, Body: body}, nil
		}
		p.restore(st)
	case p.isOp(tk, "{"):
		if p.looksLikeFormals() {
			p.next()
			f, err := p.formals()
			if err != nil {
				return nil, err
			}
			arg := ""
			nt, err := p.peek()
			if err != nil {
				return nil, err
			}
			if p.isOp(nt, "@") {
				p.next()
				id, err := p.next()
				if err != nil {
					return nil, err
				}
				if id.kind != tID {
					return nil, p.unexpected(id, "an identifier")
				}
				arg = id.s
			}
			if _, err := p.expect(":"); err != nil {
				return nil, err
			}
			body, err := p.expr()
			if err != nil {
				return nil, err
			}
			return &LambdaExpr{P: pos, Arg: arg, Formals: f, Body: body}, nil
		}
	case p.isKw(tk, "let"):
		p.next()
		nt, err := p.peek()
		if err != nil {
			return nil, err
		}
		if p.isOp(nt, "{") {
			return nil, unsupported(pos, "the legacy 'let { ... }' syntax")
		}
		b, err := p.binds(pos, true, "in")
		if err != nil {
			return nil, err
		}
		if _, err := p.expect("in"); err != nil {
			return nil, err
		}
		for _, d := range b.Dyn {
			return nil, errorf(d.P, "dynamic attributes not allowed in let")
		}
		body, err := p.expr()
		if err != nil {
			return nil, err
		}
		return &LetExpr{P: pos, Binds: b, Body: body}, nil
	case p.isKw(tk, "with"):
		p.next()
		a, body, err := p.exprSemiExpr()
		if err != nil {
			return nil, err
		}
		return &WithExpr{P: pos, Attrs: a, Body: body}, nil
	case p.isKw(tk, "assert"):
		p.next()
		c, body, err := p.exprSemiExpr()
		if err != nil {
			return nil, err
		}
		return &AssertExpr{P: pos, Cond: c, Body: body}, nil
	case p.isKw(tk, "if"):
		p.next()
		c, err := p.expr()
		if err != nil {
			return nil, err
		}
		if _, err := p.expect("then"); err != nil {
			return nil, err
		}
		th, err := p.expr()
		if err != nil {
			return nil, err
		}
		if _, err := p.expect("else"); err != nil {
			return nil, err
		}
		el, err := p.expr()
		if err != nil {
			return nil, err
		}
		return &IfExpr{P: pos, Cond: c, Then: th, Else: el}, nil
	}
	return p.binop(0)
}

// looksLikeFormals decides, at '{', between a set pattern and an attrset.
func (p *parser) looksLikeFormals() bool {
	st := p.save()
	defer p.restore(st)
	p.next() // {
	a, err := p.next()
	if err != nil {
		return false
	}
	if p.isOp(a, "...") {
		return true
	}
	if p.isOp(a, "}") {
		b, err := p.next()
		return err == nil && (p.isOp(b, ":") || p.isOp(b, "@"))
	}
	if a.kind != tID {
		return false
	}
	b, err := p.next()
	if err != nil {
		return false
	}
	if p.isOp(b, ",") || p.isOp(b, "?") {
		return true
	}
	if p.isOp(b, "}") {
		c, err := p.next()
		return err == nil && (p.isOp(c, ":") || p.isOp(c, "@"))
	}
	return false
}

// formals parses a set pattern after '{', up to and including '}'.
func (p *parser) formals() (*Formals, error) {
	f := &Formals{Defaults: map[string]Expr{}}
	seen := map[string]bool{}
	for {
		tk, err := p.next()
		if err != nil {
			return nil, err
		}
		if p.isOp(tk, "}") {
			return f, nil
		}
		if p.isOp(tk, "...") {
			f.Ellipsis = true
			if _, err := p.expect("}"); err != nil {
				return nil, err
			}
			return f, nil
		}
		if tk.kind != tID {
			return nil, p.unexpected(tk, "an identifier, '...' or '}'")
		}
		if seen[tk.s] {
			return nil, errorf(p.at(tk.off), "duplicate formal function argument '%s'", tk.s)
		}
		seen[tk.s] = true
		f.Names = append(f.Names, tk.s)
		nt, err := p.next()
		if err != nil {
			return nil, err
		}
		if p.isOp(nt, "?") {
			d, err := p.expr()
			if err != nil {
				return nil, err
			}
			f.Defaults[tk.s] = d
			if nt, err = p.next(); err != nil {
				return nil, err
			}
		}
		if p.isOp(nt, "}") {
			return f, nil
		}
		if !p.isOp(nt, ",") {
			return nil, p.unexpected(nt, "',' or '}'")
		}
	}
}

// binary operators: precedence (higher binds tighter) and associativity.
type opInfo struct {
	prec     int
	right    bool
	nonassoc bool
}

var binops = map[string]opInfo{
	"->": {1, true, false},
	"||": {2, false, false},
	"&&": {3, false, false},
	"==": {4, false, true}, "!=": {4, false, true},
	"<": {5, false, true}, ">": {5, false, true}, "<=": {5, false, true}, ">=": {5, false, true},
	"//": {6, true, false},
	// ! is 7
	"+": {8, false, false}, "-": {8, false, false},
	"*": {9, false, false}, "/": {9, false, false},
	"++": {10, true, false},
	// ? is 11, unary - 12, application 13, select 14
}

func (p *parser) binop(minPrec int) (Expr, error) {
	l, err := p.unary(minPrec)
	if err != nil {
		return nil, err
	}
	for {
		tk, err := p.peek()
		if err != nil {
			return nil, err
		}
		if tk.kind != tOp {
			return l, nil
		}
		info, ok := binops[tk.s]
		if !ok || info.prec < minPrec {
			return l, nil
		}
		p.next()
		next := info.prec + 1
		if info.right {
			next = info.prec
		}
		if err := p.enter(tk.off); err != nil {
			return nil, err
		}
		r, err := p.binop(next)
		p.depth--
		if err != nil {
			return nil, err
		}
		l = &BinExpr{P: p.at(tk.off), Op: tk.s, L: l, R: r}
		if info.nonassoc {
			nt, err := p.peek()
			if err != nil {
				return nil, err
			}
			if ni, ok := binops[nt.s]; ok && nt.kind == tOp && ni.prec == info.prec {
				return nil, p.unexpected(nt, "an expression end")
			}
		}
	}
}

// unary handles ! (prec 7), unary - (12) and ? (11) around applications.
func (p *parser) unary(minPrec int) (Expr, error) {
	tk, err := p.peek()
	if err != nil {
		return nil, err
	}
	if err := p.enter(tk.off); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	if p.isOp(tk, "!") && minPrec <= 7 {
		p.next()
		e, err := p.binop(7)
		if err != nil {
			return nil, err
		}
		return &NotExpr{P: p.at(tk.off), E: e}, nil
	}
	var e Expr
	if p.isOp(tk, "-") {
		p.next()
		inner, err := p.unary(12)
		if err != nil {
			return nil, err
		}
		e = &NegExpr{P: p.at(tk.off), E: inner}
	} else if p.isOp(tk, "!") {
		p.next()
		inner, err := p.binop(7)
		if err != nil {
			return nil, err
		}
		return &NotExpr{P: p.at(tk.off), E: inner}, nil
	} else {
		e, err = p.app()
		if err != nil {
			return nil, err
		}
	}
	if minPrec > 11 {
		return e, nil
	}
	for {
		nt, err := p.peek()
		if err != nil {
			return nil, err
		}
		if !p.isOp(nt, "?") {
			return e, nil
		}
		p.next()
		path, err := p.attrPath()
		if err != nil {
			return nil, err
		}
		e = &HasAttrExpr{P: p.at(nt.off), E: e, Path: path}
	}
}

func startsSimple(tk token) bool {
	switch tk.kind {
	case tID, tInt, tFloat, tPath, tHPath, tSPath, tStr, tIndStr, tURI:
		return true
	case tKeyword:
		return tk.s == "rec"
	case tOp:
		return tk.s == "(" || tk.s == "[" || tk.s == "{"
	}
	return false
}

// app parses function application: select select ...
func (p *parser) app() (Expr, error) {
	first, err := p.peek()
	if err != nil {
		return nil, err
	}
	f, err := p.selectExpr()
	if err != nil {
		return nil, err
	}
	for {
		tk, err := p.peek()
		if err != nil {
			return nil, err
		}
		if !startsSimple(tk) {
			return f, nil
		}
		a, err := p.selectExpr()
		if err != nil {
			return nil, err
		}
		f = &CallExpr{P: p.at(first.off), F: f, Arg: a}
	}
}

func (p *parser) selectExpr() (Expr, error) {
	start, err := p.peek()
	if err != nil {
		return nil, err
	}
	e, err := p.simple()
	if err != nil {
		return nil, err
	}
	tk, err := p.peek()
	if err != nil {
		return nil, err
	}
	if !p.isOp(tk, ".") {
		return e, nil
	}
	p.next()
	path, err := p.attrPath()
	if err != nil {
		return nil, err
	}
	s := &SelectExpr{P: p.at(start.off), E: e, Path: path}
	nt, err := p.peek()
	if err != nil {
		return nil, err
	}
	if p.isKw(nt, "or") {
		p.next()
		d, err := p.selectExpr()
		if err != nil {
			return nil, err
		}
		s.Def = d
	}
	return s, nil
}

// attrPath parses a.b."c".${d}
func (p *parser) attrPath() ([]AttrKey, error) {
	var path []AttrKey
	for {
		k, err := p.attrKey()
		if err != nil {
			return nil, err
		}
		path = append(path, k)
		tk, err := p.peek()
		if err != nil {
			return nil, err
		}
		if !p.isOp(tk, ".") {
			return path, nil
		}
		p.next()
	}
}

func (p *parser) attrKey() (AttrKey, error) {
	tk, err := p.next()
	if err != nil {
		return AttrKey{}, err
	}
	switch {
	case tk.kind == tID:
		return AttrKey{Name: tk.s}, nil
	case tk.kind == tKeyword && tk.s == "or":
		return AttrKey{Name: "or"}, nil
	case tk.kind == tStr:
		s, err := p.str(tk.off)
		if err != nil {
			return AttrKey{}, err
		}
		if lit, ok := staticString(s); ok {
			return AttrKey{Name: lit}, nil
		}
		return AttrKey{Expr: s}, nil
	case p.isOp(tk, "${"):
		e, err := p.expr()
		if err != nil {
			return AttrKey{}, err
		}
		if _, err := p.expect("}"); err != nil {
			return AttrKey{}, err
		}
		return AttrKey{Expr: e}, nil
	}
	return AttrKey{}, p.unexpected(tk, "an attribute name")
}

func staticString(s *StrExpr) (string, bool) {
	var b strings.Builder
	for _, part := range s.Parts {
		lit, ok := part.(string)
		if !ok {
			return "", false
		}
		b.WriteString(lit)
	}
	return b.String(), true
}

func (p *parser) simple() (Expr, error) {
	tk, err := p.next()
	if err != nil {
		return nil, err
	}
	if err := p.enter(tk.off); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	pos := p.at(tk.off)
	switch tk.kind {
	case tID:
		return &VarExpr{P: pos, Name: tk.s}, nil
	case tInt:
		v, _ := strconv.ParseInt(tk.s, 10, 64)
		return &IntExpr{P: pos, V: v}, nil
	case tFloat:
		return &FloatExpr{P: pos, V: tk.f}, nil
	case tPath:
		s := tk.s
		if !strings.HasPrefix(s, "/") {
			s = filepath.Join(p.src.Dir, s)
		} else {
			s = filepath.Clean(s)
		}
		return &PathExpr{P: pos, Path: s}, nil
	case tHPath:
		return nil, unsupported(pos, "home path '"+tk.s+"'")
	case tSPath:
		return &SPathExpr{P: pos, Name: tk.s}, nil
	case tURI:
		return &StrExpr{P: pos, Parts: []any{tk.s}}, nil
	case tStr:
		return p.str(tk.off)
	case tIndStr:
		return p.indStr(tk.off)
	case tKeyword:
		if tk.s == "rec" {
			if _, err := p.expect("{"); err != nil {
				return nil, err
			}
			return p.binds(pos, true, "}")
		}
	case tOp:
		switch tk.s {
		case "(":
			e, err := p.expr()
			if err != nil {
				return nil, err
			}
			if _, err := p.expect(")"); err != nil {
				return nil, err
			}
			return e, nil
		case "[":
			l := &ListExpr{P: pos}
			for {
				nt, err := p.peek()
				if err != nil {
					return nil, err
				}
				if p.isOp(nt, "]") {
					p.next()
					return l, nil
				}
				if !startsSimple(nt) {
					return nil, p.unexpected(nt, "a list element or ']'")
				}
				e, err := p.selectExpr()
				if err != nil {
					return nil, err
				}
				l.Elems = append(l.Elems, e)
			}
		case "{":
			return p.binds(pos, false, "}")
		}
	}
	return nil, p.unexpected(tk, "an expression")
}

// binds parses bindings up to the closing token (consumed when "}").
func (p *parser) binds(pos Pos, rec bool, closer string) (*AttrsExpr, error) {
	a := &AttrsExpr{P: pos, Rec: rec, Attrs: map[string]*AttrDef{}}
	for {
		tk, err := p.peek()
		if err != nil {
			return nil, err
		}
		if (tk.kind == tOp || tk.kind == tKeyword) && tk.s == closer {
			if closer == "}" {
				p.next()
			}
			return a, nil
		}
		if p.isKw(tk, "inherit") {
			p.next()
			// Nix places inherited attributes where the token before
			// the names ends (after "inherit" or the closing ")").
			ip := p.at(tk.off + len(tk.s))
			var from Expr
			nt, err := p.peek()
			if err != nil {
				return nil, err
			}
			if p.isOp(nt, "(") {
				p.next()
				if from, err = p.expr(); err != nil {
					return nil, err
				}
				ct, err := p.expect(")")
				if err != nil {
					return nil, err
				}
				ip = p.at(ct.off + len(ct.s))
			}
			for {
				nt, err := p.peek()
				if err != nil {
					return nil, err
				}
				if p.isOp(nt, ";") {
					p.next()
					break
				}
				k, err := p.attrKey()
				if err != nil {
					return nil, err
				}
				if k.Expr != nil {
					return nil, errorf(p.at(nt.off), "dynamic attributes not allowed in inherit")
				}
				kp := p.at(nt.off)
				if _, dup := a.Attrs[k.Name]; dup {
					return nil, errorf(kp, "attribute '%s' already defined at %s", k.Name, a.Attrs[k.Name].P)
				}
				def := &AttrDef{P: ip}
				if from != nil {
					def.E = &SelectExpr{P: kp, E: from, Path: []AttrKey{k}}
				} else {
					def.E = &VarExpr{P: kp, Name: k.Name}
					def.Inherited = true
				}
				a.Attrs[k.Name] = def
				a.Order = append(a.Order, k.Name)
			}
			continue
		}
		path, err := p.attrPath()
		if err != nil {
			if tk.kind == tEOF || tk.kind == tOp || tk.kind == tKeyword {
				return nil, p.unexpected(tk, "an attribute name or '"+closer+"'")
			}
			return nil, err
		}
		if _, err := p.expect("="); err != nil {
			return nil, err
		}
		v, err := p.expr()
		if err != nil {
			return nil, err
		}
		if _, err := p.expect(";"); err != nil {
			return nil, err
		}
		if err := addAttr(a, path, v, p.at(tk.off)); err != nil {
			return nil, err
		}
	}
}

// addAttr inserts path = v into a, creating nested sets for dotted paths.
func addAttr(a *AttrsExpr, path []AttrKey, v Expr, pos Pos) error {
	for i, k := range path {
		last := i == len(path)-1
		if k.Expr != nil {
			var val Expr = v
			if !last {
				n := &AttrsExpr{P: pos, Attrs: map[string]*AttrDef{}}
				if err := addAttr(n, path[i+1:], v, pos); err != nil {
					return err
				}
				val = n
			}
			a.Dyn = append(a.Dyn, DynAttr{P: pos, Key: k.Expr, E: val})
			return nil
		}
		old, exists := a.Attrs[k.Name]
		if last {
			if exists {
				// { a.b = 1; a = { c = 2; }; } merges two attrset literals
				if oa, ok := old.E.(*AttrsExpr); ok && !old.Inherited {
					if na, ok := v.(*AttrsExpr); ok && !na.Rec && !oa.Rec {
						for _, name := range na.Order {
							if _, dup := oa.Attrs[name]; dup {
								return errorf(pos, "attribute '%s' already defined at %s", name, oa.Attrs[name].P)
							}
							oa.Attrs[name] = na.Attrs[name]
							oa.Order = append(oa.Order, name)
						}
						oa.Dyn = append(oa.Dyn, na.Dyn...)
						return nil
					}
				}
				return errorf(pos, "attribute '%s' already defined at %s", k.Name, old.P)
			}
			a.Attrs[k.Name] = &AttrDef{P: pos, E: v}
			a.Order = append(a.Order, k.Name)
			return nil
		}
		if exists {
			oa, ok := old.E.(*AttrsExpr)
			if !ok || old.Inherited || oa.Rec {
				return errorf(pos, "attribute '%s' already defined at %s", k.Name, old.P)
			}
			a = oa
			continue
		}
		n := &AttrsExpr{P: pos, Attrs: map[string]*AttrDef{}}
		a.Attrs[k.Name] = &AttrDef{P: pos, E: n}
		a.Order = append(a.Order, k.Name)
		a = n
	}
	return nil
}

// exprSemiExpr parses "E1; E2", the tail of with and assert.
func (p *parser) exprSemiExpr() (Expr, Expr, error) {
	a, err := p.expr()
	if err != nil {
		return nil, nil, err
	}
	if _, err := p.expect(";"); err != nil {
		return nil, nil, err
	}
	b, err := p.expr()
	if err != nil {
		return nil, nil, err
	}
	return a, b, nil
}
