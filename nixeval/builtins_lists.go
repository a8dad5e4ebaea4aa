package nixeval

import (
	"sort"
)

// listAttrBuiltins adds the builtins on lists and attribute sets.
func listAttrBuiltins(b *Attrs) {
	add := func(name string, arity int, fn primFn) { addPrim(b, name, arity, fn) }
	add("attrNames", 1, func(ev *evaluator, pos Pos, a []*Thunk) (Value, error) {
		s, err := ev.forceAttrs(a[0], pos)
		if err != nil {
			return nil, err
		}
		if err := ev.alloc(pos, costNode+(costSlot+costThunk)*int64(len(s.M))); err != nil {
			return nil, err
		}
		l := &List{}
		for _, k := range s.Keys() {
			l.Elems = append(l.Elems, valueThunk(k))
		}
		return l, nil
	})
	add("attrValues", 1, func(ev *evaluator, pos Pos, a []*Thunk) (Value, error) {
		s, err := ev.forceAttrs(a[0], pos)
		if err != nil {
			return nil, err
		}
		if err := ev.alloc(pos, costNode+costSlot*int64(len(s.M))); err != nil {
			return nil, err
		}
		l := &List{}
		for _, k := range s.Keys() {
			l.Elems = append(l.Elems, s.M[k])
		}
		return l, nil
	})
	add("listToAttrs", 1, func(ev *evaluator, pos Pos, a []*Thunk) (Value, error) {
		l, err := ev.forceList(a[0], pos)
		if err != nil {
			return nil, err
		}
		if err := ev.alloc(pos, costNode+costEntry*int64(len(l.Elems))); err != nil {
			return nil, err
		}
		out := &Attrs{M: map[string]*Thunk{}}
		for _, t := range l.Elems {
			e, err := ev.forceAttrs(t, pos)
			if err != nil {
				return nil, err
			}
			nt, ok := e.M["name"]
			if !ok {
				return nil, errorf(pos, "attribute 'name' missing")
			}
			name, err := ev.forceString(nt, pos)
			if err != nil {
				return nil, err
			}
			vt, ok := e.M["value"]
			if !ok {
				return nil, errorf(pos, "attribute 'value' missing")
			}
			if _, dup := out.M[name]; !dup {
				out.M[name] = vt
				out.setPos(name, e.posOf("value"))
			}
		}
		return out, nil
	})
	add("mapAttrs", 2, func(ev *evaluator, pos Pos, a []*Thunk) (Value, error) {
		s, err := ev.forceAttrs(a[1], pos)
		if err != nil {
			return nil, err
		}
		if err := ev.charge(pos, len(s.M)); err != nil {
			return nil, err
		}
		if err := ev.alloc(pos, costNode+(costEntry+costCall)*int64(len(s.M))); err != nil {
			return nil, err
		}
		out := &Attrs{M: make(map[string]*Thunk, len(s.M))}
		for k, t := range s.M {
			k, t := k, t
			out.M[k] = &Thunk{fn: func() (Value, error) {
				f, err := ev.force(a[0], pos)
				if err != nil {
					return nil, err
				}
				g, err := ev.apply(f, valueThunk(k), pos)
				if err != nil {
					return nil, err
				}
				return ev.apply(g, t, pos)
			}}
		}
		return out, nil
	})
	add("map", 2, func(ev *evaluator, pos Pos, a []*Thunk) (Value, error) {
		l, err := ev.forceList(a[1], pos)
		if err != nil {
			return nil, err
		}
		if err := ev.charge(pos, len(l.Elems)); err != nil {
			return nil, err
		}
		if err := ev.alloc(pos, costNode+(costSlot+costCall)*int64(len(l.Elems))); err != nil {
			return nil, err
		}
		out := &List{Elems: make([]*Thunk, len(l.Elems))}
		for i, t := range l.Elems {
			out.Elems[i] = ev.applyThunk(a[0], pos, t)
		}
		return out, nil
	})
	add("filter", 2, func(ev *evaluator, pos Pos, a []*Thunk) (Value, error) {
		l, err := ev.forceList(a[1], pos)
		if err != nil {
			return nil, err
		}
		if err := ev.alloc(pos, costNode+costSlot*int64(len(l.Elems))); err != nil {
			return nil, err
		}
		out := &List{}
		for _, t := range l.Elems {
			ok, err := ev.callBool(a[0], pos, t)
			if err != nil {
				return nil, err
			}
			if ok {
				out.Elems = append(out.Elems, t)
			}
		}
		return out, nil
	})
	add("concatMap", 2, func(ev *evaluator, pos Pos, a []*Thunk) (Value, error) {
		l, err := ev.forceList(a[1], pos)
		if err != nil {
			return nil, err
		}
		if err := ev.alloc(pos, costNode+costCall*int64(len(l.Elems))); err != nil {
			return nil, err
		}
		out := &List{}
		for _, t := range l.Elems {
			r, err := ev.force(ev.applyThunk(a[0], pos, t), pos)
			if err != nil {
				return nil, err
			}
			rl, ok := r.(*List)
			if !ok {
				return nil, errorf(pos, "value is %s while a list was expected", typeName(r))
			}
			if err := ev.appendList(pos, out, rl.Elems); err != nil {
				return nil, err
			}
		}
		return out, nil
	})
	add("concatLists", 1, func(ev *evaluator, pos Pos, a []*Thunk) (Value, error) {
		l, err := ev.forceList(a[0], pos)
		if err != nil {
			return nil, err
		}
		out := &List{}
		for _, t := range l.Elems {
			rl, err := ev.forceList(t, pos)
			if err != nil {
				return nil, err
			}
			if err := ev.appendList(pos, out, rl.Elems); err != nil {
				return nil, err
			}
		}
		return out, nil
	})
	add("foldl'", 3, func(ev *evaluator, pos Pos, a []*Thunk) (Value, error) {
		l, err := ev.forceList(a[2], pos)
		if err != nil {
			return nil, err
		}
		acc := a[1]
		if _, err := ev.force(acc, pos); err != nil {
			return nil, err
		}
		for _, t := range l.Elems {
			f, err := ev.force(a[0], pos)
			if err != nil {
				return nil, err
			}
			g, err := ev.apply(f, acc, pos)
			if err != nil {
				return nil, err
			}
			v, err := ev.apply(g, t, pos)
			if err != nil {
				return nil, err
			}
			ev.used += costThunk
			acc = valueThunk(v)
		}
		return ev.force(acc, pos)
	})
	add("elem", 2, func(ev *evaluator, pos Pos, a []*Thunk) (Value, error) {
		x, err := ev.force(a[0], pos)
		if err != nil {
			return nil, err
		}
		l, err := ev.forceList(a[1], pos)
		if err != nil {
			return nil, err
		}
		for _, t := range l.Elems {
			v, err := ev.force(t, pos)
			if err != nil {
				return nil, err
			}
			if eq, err := ev.equal(x, v, pos); err != nil || eq {
				return eq, err
			}
		}
		return false, nil
	})
	add("hasAttr", 2, func(ev *evaluator, pos Pos, a []*Thunk) (Value, error) {
		name, err := ev.forceString(a[0], pos)
		if err != nil {
			return nil, err
		}
		s, err := ev.forceAttrs(a[1], pos)
		if err != nil {
			return nil, err
		}
		_, ok := s.M[name]
		return ok, nil
	})
	add("getAttr", 2, func(ev *evaluator, pos Pos, a []*Thunk) (Value, error) {
		name, err := ev.forceString(a[0], pos)
		if err != nil {
			return nil, err
		}
		s, err := ev.forceAttrs(a[1], pos)
		if err != nil {
			return nil, err
		}
		t, ok := s.M[name]
		if !ok {
			return nil, errorf(pos, "attribute '%s' missing", name)
		}
		return ev.force(t, pos)
	})
	add("removeAttrs", 2, func(ev *evaluator, pos Pos, a []*Thunk) (Value, error) {
		s, err := ev.forceAttrs(a[0], pos)
		if err != nil {
			return nil, err
		}
		l, err := ev.forceList(a[1], pos)
		if err != nil {
			return nil, err
		}
		if err := ev.alloc(pos, costNode+costEntry*int64(len(s.M)+len(l.Elems))); err != nil {
			return nil, err
		}
		drop := map[string]bool{}
		for _, t := range l.Elems {
			n, err := ev.forceString(t, pos)
			if err != nil {
				return nil, err
			}
			drop[n] = true
		}
		out := &Attrs{M: map[string]*Thunk{}}
		for k, t := range s.M {
			if !drop[k] {
				out.M[k] = t
				out.setPos(k, s.posOf(k))
			}
		}
		return out, nil
	})
	add("intersectAttrs", 2, func(ev *evaluator, pos Pos, a []*Thunk) (Value, error) {
		x, err := ev.forceAttrs(a[0], pos)
		if err != nil {
			return nil, err
		}
		y, err := ev.forceAttrs(a[1], pos)
		if err != nil {
			return nil, err
		}
		if err := ev.alloc(pos, costNode+costEntry*int64(min(len(x.M), len(y.M)))); err != nil {
			return nil, err
		}
		out := &Attrs{M: map[string]*Thunk{}}
		for k, t := range y.M {
			if _, ok := x.M[k]; ok {
				out.M[k] = t
				out.setPos(k, y.posOf(k))
			}
		}
		return out, nil
	})
	add("catAttrs", 2, func(ev *evaluator, pos Pos, a []*Thunk) (Value, error) {
		name, err := ev.forceString(a[0], pos)
		if err != nil {
			return nil, err
		}
		l, err := ev.forceList(a[1], pos)
		if err != nil {
			return nil, err
		}
		if err := ev.alloc(pos, costNode+costSlot*int64(len(l.Elems))); err != nil {
			return nil, err
		}
		out := &List{}
		for _, t := range l.Elems {
			s, err := ev.forceAttrs(t, pos)
			if err != nil {
				return nil, err
			}
			if v, ok := s.M[name]; ok {
				out.Elems = append(out.Elems, v)
			}
		}
		return out, nil
	})
	add("length", 1, func(ev *evaluator, pos Pos, a []*Thunk) (Value, error) {
		l, err := ev.forceList(a[0], pos)
		if err != nil {
			return nil, err
		}
		return int64(len(l.Elems)), nil
	})
	add("head", 1, func(ev *evaluator, pos Pos, a []*Thunk) (Value, error) {
		l, err := ev.forceList(a[0], pos)
		if err != nil {
			return nil, err
		}
		if len(l.Elems) == 0 {
			return nil, errorf(pos, "list index 0 is out of bounds")
		}
		return ev.force(l.Elems[0], pos)
	})
	add("tail", 1, func(ev *evaluator, pos Pos, a []*Thunk) (Value, error) {
		l, err := ev.forceList(a[0], pos)
		if err != nil {
			return nil, err
		}
		if len(l.Elems) == 0 {
			return nil, errorf(pos, "'tail' called on an empty list")
		}
		return &List{Elems: l.Elems[1:]}, nil
	})
	add("elemAt", 2, func(ev *evaluator, pos Pos, a []*Thunk) (Value, error) {
		l, err := ev.forceList(a[0], pos)
		if err != nil {
			return nil, err
		}
		n, err := ev.forceInt(a[1], pos)
		if err != nil {
			return nil, err
		}
		if n < 0 || n >= int64(len(l.Elems)) {
			return nil, errorf(pos, "list index %d is out of bounds", n)
		}
		return ev.force(l.Elems[n], pos)
	})
	add("genList", 2, func(ev *evaluator, pos Pos, a []*Thunk) (Value, error) {
		n, err := ev.forceInt(a[1], pos)
		if err != nil {
			return nil, err
		}
		if n < 0 {
			return nil, errorf(pos, "cannot create list of size %d", n)
		}
		if n > int64(ev.opts.MaxBytes) {
			return nil, limitf(pos, "list longer than %d elements", ev.opts.MaxBytes)
		}
		if err := ev.charge(pos, int(n)); err != nil {
			return nil, err
		}
		if err := ev.alloc(pos, costNode+(costSlot+costCall+costThunk)*n); err != nil {
			return nil, err
		}
		out := &List{Elems: make([]*Thunk, n)}
		for i := range out.Elems {
			out.Elems[i] = ev.applyThunk(a[0], pos, valueThunk(int64(i)))
		}
		return out, nil
	})
	add("any", 2, func(ev *evaluator, pos Pos, a []*Thunk) (Value, error) { return ev.anyAll(pos, a, true) })
	add("all", 2, func(ev *evaluator, pos Pos, a []*Thunk) (Value, error) { return ev.anyAll(pos, a, false) })
	add("sort", 2, func(ev *evaluator, pos Pos, a []*Thunk) (Value, error) {
		l, err := ev.forceList(a[1], pos)
		if err != nil {
			return nil, err
		}
		if err := ev.alloc(pos, costNode+costSlot*int64(len(l.Elems))); err != nil {
			return nil, err
		}
		out := &List{Elems: append([]*Thunk(nil), l.Elems...)}
		var serr error
		sort.SliceStable(out.Elems, func(i, j int) bool {
			if serr != nil {
				return false
			}
			f, err := ev.force(a[0], pos)
			if err != nil {
				serr = err
				return false
			}
			g, err := ev.apply(f, out.Elems[i], pos)
			if err != nil {
				serr = err
				return false
			}
			r, err := ev.apply(g, out.Elems[j], pos)
			if err != nil {
				serr = err
				return false
			}
			b, ok := r.(bool)
			if !ok {
				serr = errorf(pos, "value is %s while a Boolean was expected", typeName(r))
			}
			return b
		})
		if serr != nil {
			return nil, serr
		}
		return out, nil
	})
	add("partition", 2, func(ev *evaluator, pos Pos, a []*Thunk) (Value, error) {
		l, err := ev.forceList(a[1], pos)
		if err != nil {
			return nil, err
		}
		if err := ev.alloc(pos, 3*costNode+costSlot*int64(len(l.Elems))); err != nil {
			return nil, err
		}
		right, wrong := &List{}, &List{}
		for _, t := range l.Elems {
			ok, err := ev.callBool(a[0], pos, t)
			if err != nil {
				return nil, err
			}
			if ok {
				right.Elems = append(right.Elems, t)
			} else {
				wrong.Elems = append(wrong.Elems, t)
			}
		}
		return &Attrs{M: map[string]*Thunk{"right": valueThunk(right), "wrong": valueThunk(wrong)}}, nil
	})
	add("groupBy", 2, func(ev *evaluator, pos Pos, a []*Thunk) (Value, error) {
		l, err := ev.forceList(a[1], pos)
		if err != nil {
			return nil, err
		}
		if err := ev.alloc(pos, costNode+(costSlot+costCall+costEntry)*int64(len(l.Elems))); err != nil {
			return nil, err
		}
		groups := map[string]*List{}
		for _, t := range l.Elems {
			k, err := ev.forceString(ev.applyThunk(a[0], pos, t), pos)
			if err != nil {
				return nil, err
			}
			if groups[k] == nil {
				groups[k] = &List{}
			}
			groups[k].Elems = append(groups[k].Elems, t)
		}
		out := &Attrs{M: map[string]*Thunk{}}
		for k, g := range groups {
			out.M[k] = valueThunk(g)
		}
		return out, nil
	})
}

// appendList appends elems to out, charging the steps and keeping the
// list within the size limit (concatMap, concatLists).
func (ev *evaluator) appendList(pos Pos, out *List, elems []*Thunk) error {
	if err := ev.charge(pos, len(elems)); err != nil {
		return err
	}
	if len(out.Elems)+len(elems) > ev.opts.MaxBytes {
		return limitf(pos, "list longer than %d elements", ev.opts.MaxBytes)
	}
	if err := ev.alloc(pos, costSlot*int64(len(elems))); err != nil {
		return err
	}
	out.Elems = append(out.Elems, elems...)
	return nil
}
