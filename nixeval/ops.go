package nixeval

import (
	"fmt"
	"path/filepath"
	"strconv"
)

func (ev *evaluator) evalBin(x *BinExpr, env *Env) (Value, error) {
	switch x.Op {
	case "&&", "||", "->":
		l, err := ev.evalBool(x.L, env)
		if err != nil {
			return nil, err
		}
		switch {
		case x.Op == "&&" && !l:
			return false, nil
		case x.Op == "||" && l:
			return true, nil
		case x.Op == "->" && !l:
			return true, nil
		}
		return ev.evalBool(x.R, env)
	}
	l, err := ev.eval(x.L, env)
	if err != nil {
		return nil, err
	}
	r, err := ev.eval(x.R, env)
	if err != nil {
		return nil, err
	}
	switch x.Op {
	case "==", "!=":
		eq, err := ev.equal(l, r, x.P)
		if err != nil {
			return nil, err
		}
		return eq == (x.Op == "=="), nil
	case "<":
		return ev.less(l, r, x.P)
	case ">":
		return ev.less(r, l, x.P)
	case "<=":
		b, err := ev.less(r, l, x.P)
		return !b, err
	case ">=":
		b, err := ev.less(l, r, x.P)
		return !b, err
	case "//":
		la, ok := l.(*Attrs)
		if !ok {
			return nil, errorf(x.P, "value is %s while a set was expected", typeName(l))
		}
		ra, ok := r.(*Attrs)
		if !ok {
			return nil, errorf(x.P, "value is %s while a set was expected", typeName(r))
		}
		if len(ra.M) == 0 {
			return la, nil
		}
		if len(la.M) == 0 {
			return ra, nil
		}
		if err := ev.charge(x.P, len(la.M)+len(ra.M)); err != nil {
			return nil, err
		}
		if err := ev.alloc(x.P, costNode+costEntry*int64(len(la.M)+len(ra.M))); err != nil {
			return nil, err
		}
		out := &Attrs{M: make(map[string]*Thunk, len(la.M)+len(ra.M))}
		for _, a := range []*Attrs{la, ra} {
			for k, t := range a.M {
				out.M[k] = t
				out.setPos(k, a.posOf(k))
			}
		}
		return out, nil
	case "++":
		ll, ok := l.(*List)
		if !ok {
			return nil, errorf(x.P, "value is %s while a list was expected", typeName(l))
		}
		rl, ok := r.(*List)
		if !ok {
			return nil, errorf(x.P, "value is %s while a list was expected", typeName(r))
		}
		if len(ll.Elems)+len(rl.Elems) > ev.opts.MaxBytes {
			return nil, limitf(x.P, "list longer than %d elements", ev.opts.MaxBytes)
		}
		if err := ev.charge(x.P, len(ll.Elems)+len(rl.Elems)); err != nil {
			return nil, err
		}
		if err := ev.alloc(x.P, costNode+costSlot*int64(len(ll.Elems)+len(rl.Elems))); err != nil {
			return nil, err
		}
		out := make([]*Thunk, 0, len(ll.Elems)+len(rl.Elems))
		return &List{Elems: append(append(out, ll.Elems...), rl.Elems...)}, nil
	case "+":
		switch lv := l.(type) {
		case Path:
			s, err := ev.coerceToString(x.P, r, false, false)
			if err != nil {
				return nil, err
			}
			if err := ev.alloc(x.P, int64(len(lv)+len(s))); err != nil {
				return nil, err
			}
			return Path(canonPath(string(lv) + s)), nil
		case string:
			s, err := ev.coerceToString(x.P, r, false, true)
			if err != nil {
				return nil, err
			}
			if len(lv)+len(s) > ev.opts.MaxBytes {
				return nil, limitf(x.P, "string longer than %d bytes", ev.opts.MaxBytes)
			}
			if err := ev.charge(x.P, (len(lv)+len(s))/16); err != nil {
				return nil, err
			}
			if err := ev.alloc(x.P, int64(len(lv)+len(s))); err != nil {
				return nil, err
			}
			return lv + s, nil
		}
		if _, ok := r.(string); ok {
			return nil, errorf(x.P, "cannot add a string to %s", typeName(l))
		}
		if _, ok := r.(Path); ok {
			return nil, errorf(x.P, "cannot add a path to %s", typeName(l))
		}
	}
	return arith(x.P, x.Op, l, r)
}

// canonPath cleans a path the way Nix does (no symlink resolution).
func canonPath(p string) string {
	if p == "" {
		return "/"
	}
	return filepath.Clean(p)
}

func arith(pos Pos, op string, l, r Value) (Value, error) {
	li, lInt := l.(int64)
	ri, rInt := r.(int64)
	if lInt && rInt {
		switch op {
		case "+":
			return li + ri, nil
		case "-":
			return li - ri, nil
		case "*":
			return li * ri, nil
		case "/":
			if ri == 0 {
				return nil, errorf(pos, "division by zero")
			}
			if ri == -1 {
				return -li, nil
			}
			return li / ri, nil
		}
	}
	lf, lok := toFloat(l)
	rf, rok := toFloat(r)
	if !lok {
		return nil, errorf(pos, "value is %s while an integer was expected", typeName(l))
	}
	if !rok {
		return nil, errorf(pos, "value is %s while an integer was expected", typeName(r))
	}
	switch op {
	case "+":
		return lf + rf, nil
	case "-":
		return lf - rf, nil
	case "*":
		return lf * rf, nil
	case "/":
		if rf == 0 {
			return nil, errorf(pos, "division by zero")
		}
		return lf / rf, nil
	}
	return nil, errorf(pos, "internal error: operator %s", op)
}

func toFloat(v Value) (float64, bool) {
	switch x := v.(type) {
	case int64:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}

func (ev *evaluator) equal(a, b Value, pos Pos) (bool, error) {
	if af, ok := toFloat(a); ok {
		bf, ok := toFloat(b)
		if !ok {
			return false, nil
		}
		ai, aInt := a.(int64)
		bi, bInt := b.(int64)
		if aInt && bInt {
			return ai == bi, nil
		}
		return af == bf, nil
	}
	switch x := a.(type) {
	case Null:
		_, ok := b.(Null)
		return ok, nil
	case bool:
		y, ok := b.(bool)
		return ok && x == y, nil
	case string:
		y, ok := b.(string)
		return ok && x == y, nil
	case Path:
		y, ok := b.(Path)
		return ok && x == y, nil
	case *List:
		y, ok := b.(*List)
		if !ok || len(x.Elems) != len(y.Elems) {
			return false, nil
		}
		for i := range x.Elems {
			av, err := ev.force(x.Elems[i], pos)
			if err != nil {
				return false, err
			}
			bv, err := ev.force(y.Elems[i], pos)
			if err != nil {
				return false, err
			}
			if eq, err := ev.equal(av, bv, pos); err != nil || !eq {
				return false, err
			}
		}
		return true, nil
	case *Attrs:
		y, ok := b.(*Attrs)
		if !ok || len(x.M) != len(y.M) {
			return false, nil
		}
		if x == y {
			return true, nil
		}
		for _, k := range x.Keys() {
			bt, ok := y.M[k]
			if !ok {
				return false, nil
			}
			av, err := ev.force(x.M[k], pos)
			if err != nil {
				return false, err
			}
			bv, err := ev.force(bt, pos)
			if err != nil {
				return false, err
			}
			if eq, err := ev.equal(av, bv, pos); err != nil || !eq {
				return false, err
			}
		}
		return true, nil
	}
	return false, nil
}

func (ev *evaluator) less(a, b Value, pos Pos) (bool, error) {
	if af, ok := toFloat(a); ok {
		bf, ok := toFloat(b)
		if !ok {
			return false, errorf(pos, "cannot compare %s with %s", typeName(a), typeName(b))
		}
		ai, aInt := a.(int64)
		bi, bInt := b.(int64)
		if aInt && bInt {
			return ai < bi, nil
		}
		return af < bf, nil
	}
	switch x := a.(type) {
	case string:
		if y, ok := b.(string); ok {
			return x < y, nil
		}
	case Path:
		if y, ok := b.(Path); ok {
			return x < y, nil
		}
	case *List:
		if y, ok := b.(*List); ok {
			for i := 0; ; i++ {
				if i == len(y.Elems) {
					return false, nil
				}
				if i == len(x.Elems) {
					return true, nil
				}
				av, err := ev.force(x.Elems[i], pos)
				if err != nil {
					return false, err
				}
				bv, err := ev.force(y.Elems[i], pos)
				if err != nil {
					return false, err
				}
				eq, err := ev.equal(av, bv, pos)
				if err != nil {
					return false, err
				}
				if !eq {
					return ev.less(av, bv, pos)
				}
			}
		}
	}
	return false, errorf(pos, "cannot compare %s with %s", typeName(a), typeName(b))
}

// coerceToString turns v into a string as Nix does for interpolation
// (more=false) or toString (more=true). Copying a path to the store is
// not supported.
func (ev *evaluator) coerceToString(pos Pos, v Value, more, copyToStore bool) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case Path:
		if copyToStore {
			return ev.storePath(pos, string(x))
		}
		return string(x), nil
	case *Attrs:
		if t, ok := x.M["__toString"]; ok {
			f, err := ev.force(t, pos)
			if err != nil {
				return "", err
			}
			r, err := ev.apply(f, valueThunk(x), pos)
			if err != nil {
				return "", err
			}
			return ev.coerceToString(pos, r, more, copyToStore)
		}
		if t, ok := x.M["outPath"]; ok {
			o, err := ev.force(t, pos)
			if err != nil {
				return "", err
			}
			return ev.coerceToString(pos, o, more, copyToStore)
		}
	}
	if more {
		switch x := v.(type) {
		case bool:
			if x {
				return "1", nil
			}
			return "", nil
		case Null:
			return "", nil
		case int64:
			return strconv.FormatInt(x, 10), nil
		case float64:
			return fmt.Sprintf("%f", x), nil
		case *List:
			b := ev.newString(pos)
			for i, t := range x.Elems {
				e, err := ev.force(t, pos)
				if err != nil {
					return "", err
				}
				s, err := ev.coerceToString(pos, e, more, copyToStore)
				if err != nil {
					return "", err
				}
				if err := b.add(s); err != nil {
					return "", err
				}
				if i < len(x.Elems)-1 {
					if l, ok := e.(*List); !ok || len(l.Elems) != 0 {
						if err := b.addByte(' '); err != nil {
							return "", err
						}
					}
				}
			}
			return b.String(), nil
		}
	}
	return "", errorf(pos, "cannot coerce %s to a string", typeName(v))
}
