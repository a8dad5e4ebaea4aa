package nixeval

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
)

// Options bound an evaluation. Zero values mean the defaults.
type Options struct {
	MaxDepth int   // nested evaluations (default 10000)
	MaxSteps int64 // expression evaluations (default 50,000,000)
	MaxBytes int   // length of any one string, list or file read (default 64 MiB)
	// MaxAlloc bounds the bytes of all the values an evaluation builds,
	// strings, lists, sets and files read alike, garbage included (default
	// 64 MiB; a 1,000-entry rules file builds about 2 MiB). It is what
	// keeps a small hostile file from taking gigabytes of memory.
	MaxAlloc int64
	// Root is the directory tree the evaluation may read files in
	// (readFile, readDir, pathExists, import, paths copied to the store);
	// "" means the repository holding the evaluated file ([RepoRoot]).
	// A path outside it, also through a symlink, is an error matching
	// [ErrForbidden].
	Root string
}

func (o *Options) defaults() {
	if o.MaxDepth <= 0 {
		o.MaxDepth = 10000
	}
	if o.MaxSteps <= 0 {
		o.MaxSteps = 50_000_000
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 64 << 20
	}
	if o.MaxAlloc <= 0 {
		o.MaxAlloc = 64 << 20
	}
}

type evaluator struct {
	ctx      context.Context
	opts     Options
	depth    int
	steps    int64
	files    map[string]*Thunk
	names    map[string]string // how to name files in positions (as the caller gave them)
	stored   map[string]string // store paths of local paths, computed once
	builtins *Attrs
	base     *Env
	root     string // resolved; every file access stays below it (confine)
	used     int64  // bytes of values built (alloc), against opts.MaxAlloc
}

func newEvaluator(ctx context.Context, opts Options) *evaluator {
	opts.defaults()
	ev := &evaluator{ctx: ctx, opts: opts, files: map[string]*Thunk{}, names: map[string]string{}, stored: map[string]string{}}
	ev.initBuiltins()
	return ev
}

// EvalFile evaluates the Nix file at path (a directory means its
// default.nix) to weak head normal form.
func EvalFile(ctx context.Context, path string, opts Options) (Value, error) {
	ev := newEvaluator(ctx, opts)
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	ev.names[abs] = path
	ev.setRoot(opts.Root, filepath.Dir(abs))
	return ev.importFile(Pos{}, abs)
}

// EvalFileJSON evaluates the file at path completely, like
// `nix-instantiate --eval --strict --json`, and returns the result as
// JSON-able Go values: map[string]any, []any, string, int64, float64,
// bool and nil.
func EvalFileJSON(ctx context.Context, path string, opts Options) (any, error) {
	ev := newEvaluator(ctx, opts)
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	ev.names[abs] = path
	ev.setRoot(opts.Root, filepath.Dir(abs))
	v, err := ev.importFile(Pos{}, abs)
	if err != nil {
		return nil, err
	}
	return ev.toJSONValue(Pos{}, v)
}

// EvalStringJSON is EvalFileJSON for an expression in a string; relative
// paths in it resolve against dir.
func EvalStringJSON(ctx context.Context, name, dir, text string, opts Options) (any, error) {
	ev := newEvaluator(ctx, opts)
	ev.setRoot(opts.Root, dir)
	e, err := Parse(name, dir, text)
	if err != nil {
		return nil, err
	}
	v, err := ev.eval(e, ev.base)
	if err != nil {
		return nil, err
	}
	return ev.toJSONValue(Pos{}, v)
}

func (ev *evaluator) importFile(pos Pos, abs string) (Value, error) {
	real, err := ev.confine(pos, abs, true)
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(real); err == nil && st.IsDir() {
		abs = filepath.Join(abs, "default.nix")
	}
	t, ok := ev.files[abs]
	if !ok {
		t = &Thunk{fn: func() (Value, error) {
			b, err := ev.readFile(pos, abs)
			if err != nil {
				return nil, err
			}
			if err := ev.alloc(pos, costParse*int64(len(b))); err != nil {
				return nil, err
			}
			name := abs
			if n, ok := ev.names[abs]; ok {
				name = n
			}
			e, err := Parse(name, filepath.Dir(abs), string(b))
			if err != nil {
				return nil, err
			}
			return ev.eval(e, ev.base)
		}}
		ev.files[abs] = t
	}
	return ev.force(t, pos)
}

// readFile reads the file at abs, which must be inside the root.
func (ev *evaluator) readFile(pos Pos, abs string) ([]byte, error) {
	real, err := ev.confine(pos, abs, true)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(real)
	if err != nil {
		return nil, &Error{Pos: pos, Msg: "opening file '" + abs + "'", Err: unwrapPathErr(err)}
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, &Error{Pos: pos, Msg: "opening file '" + abs + "'", Err: unwrapPathErr(err)}
	}
	if st.IsDir() {
		return nil, errorf(pos, "opening file '%s': is a directory", abs)
	}
	if st.Size() > int64(ev.opts.MaxBytes) {
		return nil, limitf(pos, "file '%s' is larger than %d bytes", abs, ev.opts.MaxBytes)
	}
	if err := ev.alloc(pos, st.Size()); err != nil {
		return nil, err
	}
	b := make([]byte, st.Size())
	n, err := f.Read(b)
	if err != nil && n != len(b) && len(b) > 0 {
		return nil, &Error{Pos: pos, Msg: "opening file '" + abs + "'", Err: unwrapPathErr(err)}
	}
	return b[:n], nil
}

func unwrapPathErr(err error) error {
	if pe := (*os.PathError)(nil); errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// charge counts work that is not an expression evaluation (building a
// list, a set or a string) against the step limit, so that memory use is
// bounded along with time.
func (ev *evaluator) charge(pos Pos, n int) error {
	ev.steps += int64(n)
	if ev.steps > ev.opts.MaxSteps {
		return limitf(pos, "evaluation took more than %d steps", ev.opts.MaxSteps)
	}
	return nil
}

// force evaluates t if needed.
func (ev *evaluator) force(t *Thunk, pos Pos) (Value, error) {
	switch t.state {
	case 2:
		return t.v, nil
	case 1:
		if t.e != nil {
			pos = t.e.pos()
		}
		return nil, errorf(pos, "infinite recursion encountered")
	}
	t.state = 1
	var v Value
	var err error
	if t.fn != nil {
		ev.depth++
		if ev.depth > ev.opts.MaxDepth {
			ev.depth--
			t.state = 0
			return nil, limitf(pos, "stack overflow: evaluation nested more than %d levels (possible infinite recursion)", ev.opts.MaxDepth)
		}
		v, err = t.fn()
		ev.depth--
	} else {
		v, err = ev.eval(t.e, t.env)
	}
	if err != nil {
		t.state = 0
		if e := (*Error)(nil); errors.As(err, &e) && e.Pos.Src == nil && pos.Src != nil {
			e.Pos = pos // an error from a builtin value: say where it was used
		}
		return nil, err
	}
	t.v, t.state, t.e, t.env, t.fn = v, 2, nil, nil, nil
	return v, nil
}

// thunk makes the thunk of e in env; what it allocates is charged (see
// alloc) and checked at the next evaluation step.
func (ev *evaluator) thunk(e Expr, env *Env) *Thunk {
	if x, ok := e.(*VarExpr); ok {
		// A lexical variable is shared, not wrapped (lexical scope wins
		// over every with, so this is what a lookup would find).
		for s := env; s != nil && !s.building; s = s.Parent {
			if t, ok := s.get(x.Name); ok {
				return t
			}
		}
	}
	ev.used += costThunk
	switch x := e.(type) {
	case *IntExpr:
		return valueThunk(x.V)
	case *StrExpr:
		if len(x.Parts) == 1 {
			if s, ok := x.Parts[0].(string); ok {
				return valueThunk(s)
			}
		}
	case *LambdaExpr:
		return valueThunk(&Lambda{E: x, Env: env})
	}
	return &Thunk{e: e, env: env}
}

func (ev *evaluator) lookup(env *Env, name string, pos Pos) (Value, error) {
	for e := env; e != nil; e = e.Parent {
		if t, ok := e.get(name); ok {
			return ev.force(t, pos)
		}
	}
	for e := env; e != nil; e = e.Parent {
		if e.With == nil {
			continue
		}
		v, err := ev.force(e.With, pos)
		if err != nil {
			return nil, err
		}
		a, ok := v.(*Attrs)
		if !ok {
			return nil, errorf(pos, "value is %s while a set was expected", typeName(v))
		}
		if t, ok := a.M[name]; ok {
			return ev.force(t, pos)
		}
	}
	return nil, errorf(pos, "undefined variable '%s'", name)
}

func (ev *evaluator) eval(e Expr, env *Env) (Value, error) {
	ev.steps++
	if ev.steps > ev.opts.MaxSteps {
		return nil, limitf(e.pos(), "evaluation took more than %d steps", ev.opts.MaxSteps)
	}
	if ev.used > ev.opts.MaxAlloc {
		return nil, ev.overBudget(e.pos())
	}
	if ev.steps&4095 == 0 && ev.ctx.Err() != nil {
		return nil, &Error{Pos: e.pos(), Msg: "evaluation interrupted", Err: ev.ctx.Err()}
	}
	ev.depth++
	if ev.depth > ev.opts.MaxDepth {
		ev.depth--
		return nil, limitf(e.pos(), "stack overflow: evaluation nested more than %d levels (possible infinite recursion)", ev.opts.MaxDepth)
	}
	v, err := ev.eval1(e, env)
	ev.depth--
	return v, err
}

func (ev *evaluator) eval1(e Expr, env *Env) (Value, error) {
	switch x := e.(type) {
	case *IntExpr:
		return x.V, nil
	case *FloatExpr:
		return x.V, nil
	case *StrExpr:
		if len(x.Parts) == 1 {
			if s, ok := x.Parts[0].(string); ok {
				return s, nil
			}
		}
		b := ev.newString(x.P)
		for _, part := range x.Parts {
			s, ok := part.(string)
			if p, isExpr := part.(Expr); isExpr {
				v, err := ev.eval(p, env)
				if err != nil {
					return nil, err
				}
				if s, err = ev.coerceToString(p.pos(), v, false, true); err != nil {
					return nil, err
				}
				ok = true
			}
			if ok {
				if err := b.add(s); err != nil {
					return nil, err
				}
			}
		}
		if err := ev.charge(x.P, b.Len()/16); err != nil {
			return nil, err
		}
		return b.String(), nil
	case *PathExpr:
		return Path(x.Path), nil
	case *SPathExpr:
		return nil, unsupported(x.P, "the search path lookup <"+x.Name+">")
	case *VarExpr:
		return ev.lookup(env, x.Name, x.P)
	case *SelectExpr:
		return ev.evalSelect(x, env)
	case *HasAttrExpr:
		v, err := ev.eval(x.E, env)
		if err != nil {
			return nil, err
		}
		for _, k := range x.Path {
			a, ok := v.(*Attrs)
			if !ok {
				return false, nil
			}
			name, err := ev.keyName(k, env)
			if err != nil {
				return nil, err
			}
			t, ok := a.M[name]
			if !ok {
				return false, nil
			}
			if v, err = ev.force(t, x.P); err != nil {
				return nil, err
			}
		}
		return true, nil
	case *ListExpr:
		if err := ev.charge(x.P, len(x.Elems)); err != nil {
			return nil, err
		}
		if err := ev.alloc(x.P, costNode+costSlot*int64(len(x.Elems))); err != nil {
			return nil, err
		}
		l := &List{Elems: make([]*Thunk, len(x.Elems))}
		for i, el := range x.Elems {
			l.Elems[i] = ev.thunk(el, env)
		}
		return l, nil
	case *AttrsExpr:
		if !x.Rec {
			return ev.evalAttrs(x, env, env)
		}
		ev.used += costEnv + costEntry*int64(len(x.Attrs))
		inner := &Env{Vars: make(map[string]*Thunk, len(x.Attrs)), Parent: env, building: true}
		v, err := ev.evalAttrs(x, env, inner)
		inner.building = false
		return v, err
	case *LetExpr:
		ev.used += costEnv + costEntry*int64(len(x.Binds.Attrs))
		inner := &Env{Vars: make(map[string]*Thunk, len(x.Binds.Attrs)), Parent: env, building: true}
		for name, d := range x.Binds.Attrs {
			if d.Inherited {
				inner.Vars[name] = ev.thunk(d.E, env)
			} else {
				inner.Vars[name] = ev.thunk(d.E, inner)
			}
		}
		inner.building = false
		return ev.eval(x.Body, inner)
	case *WithExpr:
		ev.used += costEnv
		return ev.eval(x.Body, &Env{With: ev.thunk(x.Attrs, env), Parent: env})
	case *IfExpr:
		c, err := ev.evalBool(x.Cond, env)
		if err != nil {
			return nil, err
		}
		if c {
			return ev.eval(x.Then, env)
		}
		return ev.eval(x.Else, env)
	case *AssertExpr:
		c, err := ev.evalBool(x.Cond, env)
		if err != nil {
			return nil, err
		}
		if !c {
			return nil, errorf(x.P, "assertion failed")
		}
		return ev.eval(x.Body, env)
	case *LambdaExpr:
		return &Lambda{E: x, Env: env}, nil
	case *CallExpr:
		f, err := ev.eval(x.F, env)
		if err != nil {
			return nil, err
		}
		return ev.apply(f, ev.thunk(x.Arg, env), x.P)
	case *NotExpr:
		b, err := ev.evalBool(x.E, env)
		if err != nil {
			return nil, err
		}
		return !b, nil
	case *NegExpr:
		v, err := ev.eval(x.E, env)
		if err != nil {
			return nil, err
		}
		return arith(x.P, "-", int64(0), v)
	case *BinExpr:
		return ev.evalBin(x, env)
	}
	return nil, errorf(e.pos(), "internal error: unknown expression %T", e)
}

func (ev *evaluator) evalBool(e Expr, env *Env) (bool, error) {
	v, err := ev.eval(e, env)
	if err != nil {
		return false, err
	}
	b, ok := v.(bool)
	if !ok {
		return false, errorf(e.pos(), "value is %s while a Boolean was expected", typeName(v))
	}
	return b, nil
}

func (ev *evaluator) keyName(k AttrKey, env *Env) (string, error) {
	if k.Expr == nil {
		return k.Name, nil
	}
	v, err := ev.eval(k.Expr, env)
	if err != nil {
		return "", err
	}
	s, ok := v.(string)
	if !ok {
		return "", errorf(k.Expr.pos(), "value is %s while a string was expected", typeName(v))
	}
	return s, nil
}

func (ev *evaluator) evalSelect(x *SelectExpr, env *Env) (Value, error) {
	v, err := ev.eval(x.E, env)
	if err != nil {
		return nil, err
	}
	for _, k := range x.Path {
		a, ok := v.(*Attrs)
		if !ok {
			if x.Def != nil {
				return ev.eval(x.Def, env)
			}
			return nil, errorf(x.P, "value is %s while a set was expected", typeName(v))
		}
		name, err := ev.keyName(k, env)
		if err != nil {
			return nil, err
		}
		t, ok := a.M[name]
		if !ok {
			if x.Def != nil {
				return ev.eval(x.Def, env)
			}
			if a == ev.builtins {
				return nil, unsupported(x.P, "builtins."+name)
			}
			return nil, errorf(x.P, "attribute '%s' missing", name)
		}
		if v, err = ev.force(t, x.P); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// evalAttrs builds an attribute set; inner is the scope of its values
// (the set's own scope when rec, where it is also filled in).
func (ev *evaluator) evalAttrs(x *AttrsExpr, outer, inner *Env) (Value, error) {
	if err := ev.alloc(x.P, costNode+costEntry*int64(len(x.Attrs)+len(x.Dyn))); err != nil {
		return nil, err
	}
	a := &Attrs{M: make(map[string]*Thunk, len(x.Attrs)+len(x.Dyn))}
	for name, d := range x.Attrs {
		var t *Thunk
		if d.Inherited {
			t = ev.thunk(d.E, outer)
		} else {
			t = ev.thunk(d.E, inner)
		}
		a.M[name] = t
		a.setPos(name, d.P)
		if inner != outer {
			inner.Vars[name] = t
		}
	}
	for _, d := range x.Dyn {
		k, err := ev.eval(d.Key, inner)
		if err != nil {
			return nil, err
		}
		if _, ok := k.(Null); ok {
			continue
		}
		s, ok := k.(string)
		if !ok {
			return nil, errorf(d.P, "value is %s while a string was expected", typeName(k))
		}
		if _, dup := a.M[s]; dup {
			return nil, errorf(d.P, "dynamic attribute '%s' already defined", s)
		}
		a.M[s] = ev.thunk(d.E, inner)
		a.setPos(s, d.P)
	}
	return a, nil
}

func (ev *evaluator) apply(f Value, arg *Thunk, pos Pos) (Value, error) {
	switch fn := f.(type) {
	case *Lambda:
		le := fn.E
		if le.Formals == nil {
			ev.used += costEnv
			ev.depth++
			v, err := ev.eval(le.Body, &Env{One: le.Arg, OneT: arg, Parent: fn.Env})
			ev.depth--
			return v, err
		}
		ev.used += costEnv + costEntry*int64(len(le.Formals.Names)+1)
		env := &Env{Vars: make(map[string]*Thunk, len(le.Formals.Names)+1), Parent: fn.Env, building: true}
		if le.Arg != "" {
			env.Vars[le.Arg] = arg
		}
		av, err := ev.force(arg, pos)
		if err != nil {
			return nil, err
		}
		a, ok := av.(*Attrs)
		if !ok {
			return nil, errorf(pos, "value is %s while a set was expected", typeName(av))
		}
		for _, name := range le.Formals.Names {
			if t, ok := a.M[name]; ok {
				env.Vars[name] = t
			} else if d, ok := le.Formals.Defaults[name]; ok {
				env.Vars[name] = ev.thunk(d, env)
			} else {
				return nil, errorf(pos, "function at %s called without required argument '%s'", le.P, name)
			}
		}
		if !le.Formals.Ellipsis {
			for _, k := range a.Keys() {
				if _, ok := env.Vars[k]; !ok || k == le.Arg && !slices.Contains(le.Formals.Names, k) {
					return nil, errorf(pos, "function at %s called with unexpected argument '%s'", le.P, k)
				}
			}
		}
		env.building = false
		ev.depth++
		v, err := ev.eval(le.Body, env)
		ev.depth--
		return v, err
	case *PrimOp:
		ev.used += costNode + costSlot*int64(len(fn.Args)+1)
		args := make([]*Thunk, len(fn.Args), len(fn.Args)+1)
		copy(args, fn.Args)
		args = append(args, arg)
		if len(args) < fn.Arity {
			return &PrimOp{Name: fn.Name, Arity: fn.Arity, Fn: fn.Fn, Args: args}, nil
		}
		return fn.Fn(ev, pos, args)
	case *Attrs:
		if t, ok := fn.M["__functor"]; ok {
			ff, err := ev.force(t, pos)
			if err != nil {
				return nil, err
			}
			g, err := ev.apply(ff, valueThunk(fn), pos)
			if err != nil {
				return nil, err
			}
			return ev.apply(g, arg, pos)
		}
	}
	return nil, errorf(pos, "attempt to call something which is not a function but %s", typeName(f))
}
