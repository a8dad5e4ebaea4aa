package disko

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// This file reads disko's JSON generically, so that every value is
// checked against what disko's option types accept and every error names
// its node and option: a wrong type, a value disko rejects, an option
// disko does not have, or one fleet does not implement.

// unwrapNix resolves the module-system wrappers that a raw layout carries
// when it is exported to JSON without evaluating disko's modules:
// lib.mkDefault and lib.mkForce ({"_type":"override","content":...}),
// lib.mkIf ({"_type":"if","condition":...,"content":...}) and lib.mkOrder
// ({"_type":"order",...}). keep is false for an mkIf whose condition is
// false: the option then takes its default, as in disko.
func unwrapNix(v any, path string) (out any, keep bool, err error) {
	switch x := v.(type) {
	case map[string]any:
		if t, ok := x["_type"].(string); ok {
			switch t {
			case "override", "order":
				return unwrapNix(x["content"], path)
			case "if":
				c, ok := x["condition"].(bool)
				if !ok {
					return nil, false, specErr(path, "lib.mkIf condition %s: want true or false", show(x["condition"]))
				}
				if !c {
					return nil, false, nil
				}
				return unwrapNix(x["content"], path)
			default:
				return nil, false, fmt.Errorf("%s: a value of Nix type %q (lib.mkMerge and the like) is %w\nhint: evaluate the layout first, e.g. nix eval --json .#nixosConfigurations.HOST.config.disko.devices", path, t, ErrUnsupported)
			}
		}
		m := make(map[string]any, len(x))
		for k, e := range x {
			u, keep, err := unwrapNix(e, path+"."+k)
			if err != nil {
				return nil, false, err
			}
			if keep {
				m[k] = u
			}
		}
		return m, true, nil
	case []any:
		l := make([]any, 0, len(x))
		for i, e := range x {
			u, keep, err := unwrapNix(e, fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, false, err
			}
			if keep {
				l = append(l, u)
			}
		}
		return l, true, nil
	}
	return v, true, nil
}

// show writes a JSON value for an error message: once, quoted as JSON.
func show(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	if len(b) > 80 {
		return string(b[:77]) + "..."
	}
	return string(b)
}

// obj is one JSON object of the layout at path. Reading an option marks
// it used; finish refuses the options nobody read. The first error is
// kept in the parser (later reads return zero values), so parsing code
// reads as a list of options.
type obj struct {
	p    *parser
	path string
	key  string // its attr name, for objects of an attrset
	m    map[string]any
	used map[string]bool
}

func (p *parser) obj(path, key string, v any) *obj {
	m, ok := v.(map[string]any)
	if !ok {
		p.specErr(path, "%s: want an attrset", show(v))
		m = map[string]any{}
	}
	return &obj{p: p, path: path, key: key, m: m, used: map[string]bool{}}
}

func (o *obj) at(k string) string { return o.path + "." + k }

// get returns the option's value; absent and null are both "not set".
func (o *obj) get(k string) (any, bool) {
	o.used[k] = true
	v, ok := o.m[k]
	return v, ok && v != nil
}

// null reports whether the option is set to null explicitly.
func (o *obj) null(k string) bool {
	v, ok := o.m[k]
	return ok && v == nil
}

func (o *obj) str(k, def string) string {
	v, ok := o.get(k)
	if !ok {
		return def
	}
	s, isStr := v.(string)
	if !isStr {
		o.p.specErr(o.at(k), "%s: want a string", show(v))
		return def
	}
	return s
}

func (o *obj) strs(k string) []string {
	v, ok := o.get(k)
	if !ok {
		return nil
	}
	l, isList := v.([]any)
	if !isList {
		o.p.specErr(o.at(k), "%s: want a list of strings", show(v))
		return nil
	}
	out := make([]string, 0, len(l))
	for i, e := range l {
		s, isStr := e.(string)
		if !isStr {
			o.p.specErr(fmt.Sprintf("%s[%d]", o.at(k), i), "%s: want a string", show(e))
			return nil
		}
		out = append(out, s)
	}
	return out
}

func (o *obj) optInt(k string) *int {
	v, ok := o.get(k)
	if !ok {
		return nil
	}
	n, isNum := v.(json.Number)
	i, err := n.Int64()
	if !isNum || err != nil || i != int64(int(i)) || i > 1<<40 || i < -(1<<40) {
		o.p.specErr(o.at(k), "%s: want a whole number", show(v))
		return nil
	}
	r := int(i)
	return &r
}

func (o *obj) int(k string, def int) int {
	if i := o.optInt(k); i != nil {
		return *i
	}
	return def
}

func (o *obj) ints(k string) []int {
	v, ok := o.get(k)
	if !ok {
		return nil
	}
	l, isList := v.([]any)
	if !isList {
		o.p.specErr(o.at(k), "%s: want a list of whole numbers", show(v))
		return nil
	}
	var out []int
	for _, e := range l {
		n, isNum := e.(json.Number)
		i, err := n.Int64()
		if !isNum || err != nil || i < 0 || i > 63 {
			o.p.specErr(o.at(k), "%s: want a list of whole numbers from 0 to 63", show(v))
			return nil
		}
		out = append(out, int(i))
	}
	return out
}

func (o *obj) flag(k string, def bool) bool {
	v, ok := o.get(k)
	if !ok {
		return def
	}
	b, isBool := v.(bool)
	if !isBool {
		o.p.specErr(o.at(k), "%s: want true or false", show(v))
		return def
	}
	return b
}

// sub is the object under k, nil when absent or null.
func (o *obj) sub(k string) *obj {
	v, ok := o.get(k)
	if !ok {
		return nil
	}
	return o.p.obj(o.at(k), k, v)
}

// subs are the objects of the attrset under k, by attr name.
func (o *obj) subs(k string) []*obj {
	v, ok := o.get(k)
	if !ok {
		return nil
	}
	m, isMap := v.(map[string]any)
	if !isMap {
		o.p.specErr(o.at(k), "%s: want an attrset", show(v))
		return nil
	}
	keys := sortedKeys(m)
	out := make([]*obj, 0, len(keys))
	for _, name := range keys {
		sub := m[name]
		if sub == nil {
			sub = map[string]any{} // `name = { };` in Nix
		}
		out = append(out, o.p.obj(o.at(k)+"."+name, name, sub))
	}
	return out
}

// items are the objects of the list under k.
func (o *obj) items(k string) []*obj {
	v, ok := o.get(k)
	if !ok {
		return nil
	}
	l, isList := v.([]any)
	if !isList {
		o.p.specErr(o.at(k), "%s: want a list", show(v))
		return nil
	}
	out := make([]*obj, 0, len(l))
	for i, e := range l {
		out = append(out, o.p.obj(fmt.Sprintf("%s[%d]", o.at(k), i), "", e))
	}
	return out
}

// ignore marks options that only shape the NixOS configuration or disko's
// image builder, not the disks: fleet reads nothing from them.
func (o *obj) ignore(keys ...string) {
	for _, k := range keys {
		o.used[k] = true
	}
}

// finish refuses options nobody read. Keys starting with "_" are disko's
// internal options (the evaluated form may carry some); they are skipped.
func (o *obj) finish() {
	for _, k := range sortedKeys(o.m) {
		if o.used[k] || strings.HasPrefix(k, "_") {
			continue
		}
		o.p.specErr(o.at(k), "disko has no such option here")
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
