package nixeval

// baseNames are the variables in scope at the top of every file.
var baseNames = map[string]bool{}

func init() {
	for _, n := range []string{"abort", "baseNameOf", "break", "builtins", "derivation", "derivationStrict", "dirOf", "false", "fetchGit", "fetchMercurial", "fetchTarball", "fetchTree", "fromTOML", "import", "isNull", "map", "null", "placeholder", "removeAttrs", "scopedImport", "throw", "toString", "true"} {
		baseNames[n] = true
	}
}

// scope is a static scope for the undefined-variable check Nix does
// while parsing, before evaluating anything.
type scope struct {
	names  map[string]bool
	with   bool
	parent *scope
}

func (s *scope) defined(name string) bool {
	for ; s != nil; s = s.parent {
		if s.with || s.names[name] {
			return true
		}
	}
	return baseNames[name]
}

// resolve reports the first variable that is defined nowhere, as Nix
// does at parse time ("undefined variable 'x'").
func resolve(e Expr, s *scope) error {
	switch x := e.(type) {
	case nil, *IntExpr, *FloatExpr, *PathExpr, *SPathExpr:
		return nil
	case *StrExpr:
		for _, p := range x.Parts {
			if pe, ok := p.(Expr); ok {
				if err := resolve(pe, s); err != nil {
					return err
				}
			}
		}
	case *VarExpr:
		if !s.defined(x.Name) {
			return errorf(x.P, "undefined variable '%s'", x.Name)
		}
	case *SelectExpr:
		if err := resolve(x.E, s); err != nil {
			return err
		}
		if err := resolveKeys(x.Path, s); err != nil {
			return err
		}
		return resolve(x.Def, s)
	case *HasAttrExpr:
		if err := resolve(x.E, s); err != nil {
			return err
		}
		return resolveKeys(x.Path, s)
	case *ListExpr:
		for _, el := range x.Elems {
			if err := resolve(el, s); err != nil {
				return err
			}
		}
	case *AttrsExpr:
		inner := s
		if x.Rec {
			inner = &scope{names: map[string]bool{}, parent: s}
			for n := range x.Attrs {
				inner.names[n] = true
			}
		}
		return resolveBinds(x, s, inner)
	case *LetExpr:
		inner := &scope{names: map[string]bool{}, parent: s}
		for n := range x.Binds.Attrs {
			inner.names[n] = true
		}
		if err := resolveBinds(x.Binds, s, inner); err != nil {
			return err
		}
		return resolve(x.Body, inner)
	case *WithExpr:
		if err := resolve(x.Attrs, s); err != nil {
			return err
		}
		return resolve(x.Body, &scope{with: true, parent: s})
	case *IfExpr:
		for _, c := range []Expr{x.Cond, x.Then, x.Else} {
			if err := resolve(c, s); err != nil {
				return err
			}
		}
	case *AssertExpr:
		if err := resolve(x.Cond, s); err != nil {
			return err
		}
		return resolve(x.Body, s)
	case *LambdaExpr:
		inner := &scope{names: map[string]bool{}, parent: s}
		if x.Arg != "" {
			inner.names[x.Arg] = true
		}
		if x.Formals != nil {
			for _, n := range x.Formals.Names {
				inner.names[n] = true
			}
			for _, n := range x.Formals.Names {
				if err := resolve(x.Formals.Defaults[n], inner); err != nil {
					return err
				}
			}
		}
		return resolve(x.Body, inner)
	case *CallExpr:
		if err := resolve(x.F, s); err != nil {
			return err
		}
		return resolve(x.Arg, s)
	case *BinExpr:
		if err := resolve(x.L, s); err != nil {
			return err
		}
		return resolve(x.R, s)
	case *NotExpr:
		return resolve(x.E, s)
	case *NegExpr:
		return resolve(x.E, s)
	}
	return nil
}

func resolveKeys(path []AttrKey, s *scope) error {
	for _, k := range path {
		if err := resolve(k.Expr, s); err != nil {
			return err
		}
	}
	return nil
}

func resolveBinds(a *AttrsExpr, outer, inner *scope) error {
	for _, n := range a.Order {
		d := a.Attrs[n]
		sc := inner
		if d.Inherited {
			sc = outer
		}
		if err := resolve(d.E, sc); err != nil {
			return err
		}
	}
	for _, d := range a.Dyn {
		if err := resolve(d.Key, inner); err != nil {
			return err
		}
		if err := resolve(d.E, inner); err != nil {
			return err
		}
	}
	return nil
}
