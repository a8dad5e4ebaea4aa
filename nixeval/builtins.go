package nixeval

import (
	"encoding/json"
	"errors"
	"math"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

type primFn = func(ev *evaluator, pos Pos, args []*Thunk) (Value, error)

// unsupportedBuiltins are Nix builtins this package does not implement;
// using one is an ErrUnsupported error naming it.
var unsupportedBuiltins = []string{
	"getFlake", "fetchGit", "fetchTarball", "fetchurl", "fetchTree", "fetchMercurial",
	"derivation", "derivationStrict", "storePath", "path", "filterSource", "toFile",
	"findFile", "scopedImport", "placeholder", "getContext", "appendContext", "hasContext",
	"unsafeDiscardStringContext", "unsafeDiscardOutputDependency", "unsafeGetAttrPos",
	"addErrorContext", "tryEval", "toXML", "hashFile", "exec", "importNative", "break",
	"fetchClosure", "outputOf", "traceVerbose", "zipAttrsWith", "splitVersion", "compareVersions",
	"parseDrvName", "functionArgs", "genericClosure",
}

func addPrim(b *Attrs, name string, arity int, fn primFn) {
	b.M[name] = valueThunk(&PrimOp{Name: name, Arity: arity, Fn: fn})
}

func (ev *evaluator) initBuiltins() {
	b := &Attrs{M: map[string]*Thunk{}}
	add := func(name string, arity int, fn primFn) { addPrim(b, name, arity, fn) }
	for _, n := range unsupportedBuiltins {
		name := n
		add(name, 1, func(ev *evaluator, pos Pos, args []*Thunk) (Value, error) {
			return nil, unsupported(pos, "builtins."+name)
		})
	}
	// Values (not functions) that only a real Nix knows.
	for _, n := range []string{"currentSystem", "currentTime", "nixPath", "storeDir", "nixVersion", "langVersion"} {
		name := n
		b.M[name] = &Thunk{fn: func() (Value, error) { return nil, unsupported(Pos{}, "builtins."+name) }}
	}
	b.M["true"] = valueThunk(true)
	b.M["false"] = valueThunk(false)
	b.M["null"] = valueThunk(Null{})
	b.M["builtins"] = valueThunk(b)
	add("import", 1, biImport)
	add("toString", 1, func(ev *evaluator, pos Pos, a []*Thunk) (Value, error) {
		v, err := ev.force(a[0], pos)
		if err != nil {
			return nil, err
		}
		return ev.coerceToString(pos, v, true, false)
	})
	add("throw", 1, func(ev *evaluator, pos Pos, a []*Thunk) (Value, error) {
		s, err := ev.forceString(a[0], pos)
		if err != nil {
			return nil, err
		}
		return nil, errorf(pos, "%s", s)
	})
	add("abort", 1, func(ev *evaluator, pos Pos, a []*Thunk) (Value, error) {
		s, err := ev.forceString(a[0], pos)
		if err != nil {
			return nil, err
		}
		return nil, errorf(pos, "evaluation aborted with the following error message: '%s'", s)
	})
	listAttrBuiltins(b)
	fileStringBuiltins(b)
	ev.builtins = b
	// The names Nix puts in scope without `builtins.`.
	base := &Env{Vars: map[string]*Thunk{}}
	for _, n := range []string{"abort", "baseNameOf", "break", "builtins", "derivation", "derivationStrict", "dirOf", "false", "fetchGit", "fetchMercurial", "fetchTarball", "fetchTree", "fromTOML", "import", "isNull", "map", "null", "placeholder", "removeAttrs", "scopedImport", "throw", "toString", "true"} {
		if t, ok := b.M[n]; ok {
			base.Vars[n] = t
		}
	}
	ev.base = base
}

func biImport(ev *evaluator, pos Pos, a []*Thunk) (Value, error) {
	p, err := ev.forcePath(a[0], pos)
	if err != nil {
		return nil, err
	}
	return ev.importFile(pos, p)
}

func (ev *evaluator) anyAll(pos Pos, a []*Thunk, isAny bool) (Value, error) {
	l, err := ev.forceList(a[1], pos)
	if err != nil {
		return nil, err
	}
	for _, t := range l.Elems {
		ok, err := ev.callBool(a[0], pos, t)
		if err != nil {
			return nil, err
		}
		if ok == isAny {
			return isAny, nil
		}
	}
	return !isAny, nil
}

func (ev *evaluator) applyThunk(f *Thunk, pos Pos, arg *Thunk) *Thunk {
	return &Thunk{fn: func() (Value, error) {
		fv, err := ev.force(f, pos)
		if err != nil {
			return nil, err
		}
		return ev.apply(fv, arg, pos)
	}}
}

func (ev *evaluator) callBool(f *Thunk, pos Pos, arg *Thunk) (bool, error) {
	fv, err := ev.force(f, pos)
	if err != nil {
		return false, err
	}
	r, err := ev.apply(fv, arg, pos)
	if err != nil {
		return false, err
	}
	b, ok := r.(bool)
	if !ok {
		return false, errorf(pos, "value is %s while a Boolean was expected", typeName(r))
	}
	return b, nil
}

// forceAs forces t and requires a value of type T; what names the type in
// Nix's words ("a set", "a list", ...) for the error.
func forceAs[T any](ev *evaluator, t *Thunk, pos Pos, what string) (T, error) {
	var zero T
	v, err := ev.force(t, pos)
	if err != nil {
		return zero, err
	}
	x, ok := v.(T)
	if !ok {
		return zero, errorf(pos, "value is %s while %s was expected", typeName(v), what)
	}
	return x, nil
}

func (ev *evaluator) forceAttrs(t *Thunk, pos Pos) (*Attrs, error) {
	return forceAs[*Attrs](ev, t, pos, "a set")
}

func (ev *evaluator) forceList(t *Thunk, pos Pos) (*List, error) {
	return forceAs[*List](ev, t, pos, "a list")
}

func (ev *evaluator) forceString(t *Thunk, pos Pos) (string, error) {
	return forceAs[string](ev, t, pos, "a string")
}

func (ev *evaluator) forceInt(t *Thunk, pos Pos) (int64, error) {
	return forceAs[int64](ev, t, pos, "an integer")
}

// forcePath accepts a path, or a string holding an absolute path.
func (ev *evaluator) forcePath(t *Thunk, pos Pos) (string, error) {
	v, err := ev.force(t, pos)
	if err != nil {
		return "", err
	}
	if p, ok := v.(Path); ok {
		return string(p), nil
	}
	s, err := ev.coerceToString(pos, v, false, false)
	if err != nil {
		return "", err
	}
	if !filepath.IsAbs(s) {
		return "", errorf(pos, "string '%s' doesn't represent an absolute path", s)
	}
	return filepath.Clean(s), nil
}

func (ev *evaluator) deepForce(pos Pos, v Value) error {
	_, err := ev.toJSONValue(pos, v)
	if err != nil {
		var e *Error
		if errors.As(err, &e) && e.Kind == nil && strings.HasPrefix(e.Msg, "cannot convert") {
			return nil
		}
	}
	return err
}

func biReplaceStrings(ev *evaluator, pos Pos, a []*Thunk) (Value, error) {
	fromL, err := ev.forceList(a[0], pos)
	if err != nil {
		return nil, err
	}
	toL, err := ev.forceList(a[1], pos)
	if err != nil {
		return nil, err
	}
	if len(fromL.Elems) != len(toL.Elems) {
		return nil, errorf(pos, "'from' and 'to' arguments to 'replaceStrings' have different lengths")
	}
	from := make([]string, len(fromL.Elems))
	for i, t := range fromL.Elems {
		if from[i], err = ev.forceString(t, pos); err != nil {
			return nil, err
		}
	}
	to := make([]*string, len(toL.Elems))
	s, err := ev.forceString(a[2], pos)
	if err != nil {
		return nil, err
	}
	getTo := func(i int) (string, error) {
		if to[i] == nil {
			v, err := ev.forceString(toL.Elems[i], pos)
			if err != nil {
				return "", err
			}
			to[i] = &v
		}
		return *to[i], nil
	}
	b := ev.newString(pos)
	for p := 0; p <= len(s); {
		found := false
		for i, f := range from {
			if strings.HasPrefix(s[p:], f) {
				r, err := getTo(i)
				if err != nil {
					return nil, err
				}
				if err := b.add(r); err != nil {
					return nil, err
				}
				found = true
				if f == "" {
					if p < len(s) {
						if err := b.addByte(s[p]); err != nil {
							return nil, err
						}
					}
					p++
				} else {
					p += len(f)
				}
				break
			}
		}
		if !found {
			// Copy up to the next place a pattern could start.
			next := len(s)
			for _, f := range from {
				if f == "" {
					next = p + 1
					break
				}
				if i := strings.Index(s[p:], f); i >= 0 && p+i < next {
					next = p + i
				}
			}
			if next > len(s) {
				next = len(s)
			}
			if err := b.add(s[p:next]); err != nil {
				return nil, err
			}
			if next == p {
				p++ // the end of s, or an empty pattern's one byte
			} else {
				p = next
			}
		}
	}
	return b.String(), nil
}

func (ev *evaluator) regex(pos Pos, t *Thunk, anchored bool) (*regexp.Regexp, error) {
	re, err := ev.forceString(t, pos)
	if err != nil {
		return nil, err
	}
	if anchored {
		re = "^(?:" + re + ")$"
	}
	r, err := regexp.Compile(re)
	if err != nil {
		return nil, errorf(pos, "invalid regular expression '%s'", re)
	}
	return r, nil
}

func biMatch(ev *evaluator, pos Pos, a []*Thunk) (Value, error) {
	re, err := ev.regex(pos, a[0], true)
	if err != nil {
		return nil, err
	}
	s, err := ev.forceString(a[1], pos)
	if err != nil {
		return nil, err
	}
	m := re.FindStringSubmatchIndex(s)
	if m == nil {
		return Null{}, nil
	}
	if err := ev.alloc(pos, costNode+(costSlot+costThunk)*int64(len(m)/2)); err != nil {
		return nil, err
	}
	return groups(s, m), nil
}

func groups(s string, m []int) *List {
	out := &List{}
	for i := 2; i+1 < len(m); i += 2 {
		if m[i] < 0 {
			out.Elems = append(out.Elems, valueThunk(Null{}))
		} else {
			out.Elems = append(out.Elems, valueThunk(s[m[i]:m[i+1]]))
		}
	}
	return out
}

func biSplit(ev *evaluator, pos Pos, a []*Thunk) (Value, error) {
	re, err := ev.regex(pos, a[0], false)
	if err != nil {
		return nil, err
	}
	s, err := ev.forceString(a[1], pos)
	if err != nil {
		return nil, err
	}
	// Go drops an empty match right after a non-empty one; Nix's
	// std::regex_iterator keeps it. Put those back (a pattern with ^
	// cannot match there).
	var all [][]int
	anchored := strings.Contains(re.String(), "^")
	// Each match costs at least two list elements: no more matches than
	// the budget allows are looked for.
	most := int((ev.opts.MaxAlloc-ev.used)/(2*(costSlot+costThunk))) + 1
	if most < 1 {
		return nil, ev.overBudget(pos)
	}
	for _, m := range re.FindAllStringSubmatchIndex(s, most) {
		all = append(all, m)
		e := m[1]
		if anchored || m[0] == e {
			continue
		}
		if e2 := re.FindStringSubmatchIndex(s[e:]); e2 != nil && e2[0] == 0 && e2[1] == 0 {
			for j := range e2 {
				if e2[j] >= 0 {
					e2[j] += e
				}
			}
			all = append(all, e2)
		}
	}
	n := int64(1)
	for _, m := range all {
		n += 2 + int64(len(m)/2)
	}
	if err := ev.alloc(pos, costNode+(costSlot+costThunk)*n); err != nil {
		return nil, err
	}
	out := &List{}
	prev := 0
	for _, m := range all {
		if m[0] < prev {
			continue
		}
		out.Elems = append(out.Elems, valueThunk(s[prev:m[0]]), valueThunk(groups(s, m)))
		prev = m[1]
	}
	out.Elems = append(out.Elems, valueThunk(s[prev:]))
	return out, nil
}

func (ev *evaluator) fromJSON(pos Pos, s string) (Value, error) {
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, &Error{Pos: pos, Msg: "cannot parse JSON", Err: err}
	}
	if d.More() {
		return nil, errorf(pos, "cannot parse JSON: trailing data")
	}
	return ev.fromGo(pos, v)
}

// fromGo converts decoded JSON/TOML into Nix values, charging them.
func (ev *evaluator) fromGo(pos Pos, v any) (Value, error) {
	if err := ev.alloc(pos, costThunk); err != nil {
		return nil, err
	}
	switch x := v.(type) {
	case nil:
		return Null{}, nil
	case string:
		if err := ev.alloc(pos, int64(len(x))); err != nil {
			return nil, err
		}
		return x, nil
	case bool, int64, float64:
		return x, nil
	case json.Number:
		if !strings.ContainsAny(string(x), ".eE") {
			if i, err := x.Int64(); err == nil {
				return i, nil
			}
		}
		f, err := x.Float64()
		if err != nil || math.IsInf(f, 0) {
			return nil, errorf(pos, "cannot parse JSON number %s", x)
		}
		return f, nil
	case []any:
		if err := ev.alloc(pos, costSlot*int64(len(x))); err != nil {
			return nil, err
		}
		l := &List{Elems: make([]*Thunk, len(x))}
		for i, e := range x {
			nv, err := ev.fromGo(pos, e)
			if err != nil {
				return nil, err
			}
			l.Elems[i] = valueThunk(nv)
		}
		return l, nil
	case []map[string]any:
		if err := ev.alloc(pos, costSlot*int64(len(x))); err != nil {
			return nil, err
		}
		l := &List{Elems: make([]*Thunk, len(x))}
		for i, e := range x {
			nv, err := ev.fromGo(pos, e)
			if err != nil {
				return nil, err
			}
			l.Elems[i] = valueThunk(nv)
		}
		return l, nil
	case map[string]any:
		if err := ev.alloc(pos, costEntry*int64(len(x))); err != nil {
			return nil, err
		}
		a := &Attrs{M: make(map[string]*Thunk, len(x))}
		for k, e := range x {
			nv, err := ev.fromGo(pos, e)
			if err != nil {
				return nil, err
			}
			a.M[k] = valueThunk(nv)
		}
		return a, nil
	case time.Time:
		return nil, unsupported(pos, "a TOML date/time value")
	}
	return nil, errorf(pos, "unsupported value of type %T", v)
}
