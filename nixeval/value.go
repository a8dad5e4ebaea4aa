package nixeval

import (
	"sort"
)

// Value is an evaluated Nix value: Null, bool, int64, float64, string,
// Path, *List, *Attrs, *Lambda or *PrimOp.
type Value any

// Null is Nix's null.
type Null struct{}

// Path is an absolute path value.
type Path string

// List is a list of lazily evaluated elements.
type List struct{ Elems []*Thunk }

// Attrs is an attribute set of lazily evaluated values.
type Attrs struct {
	M    map[string]*Thunk
	keys []string
	// pos is where each attribute was defined, as Nix tracks it (the
	// binding in a set literal, the value of a listToAttrs element);
	// attributes a builtin made have none. Errors about a value that
	// reaches JSON name it.
	pos map[string]Pos
}

// posOf returns where attribute k was defined, or the zero Pos.
func (a *Attrs) posOf(k string) Pos { return a.pos[k] }

// setPos records where attribute k was defined.
func (a *Attrs) setPos(k string, p Pos) {
	if p.Src == nil {
		return
	}
	if a.pos == nil {
		a.pos = make(map[string]Pos, len(a.M))
	}
	a.pos[k] = p
}

// Keys returns the attribute names, sorted as Nix sorts them (bytewise).
func (a *Attrs) Keys() []string {
	if a.keys == nil || len(a.keys) != len(a.M) {
		a.keys = make([]string, 0, len(a.M))
		for k := range a.M {
			a.keys = append(a.keys, k)
		}
		sort.Strings(a.keys)
	}
	return a.keys
}

// Lambda is a closure.
type Lambda struct {
	E   *LambdaExpr
	Env *Env
}

// PrimOp is a builtin function, possibly partially applied.
type PrimOp struct {
	Name  string
	Arity int
	Fn    func(ev *evaluator, pos Pos, args []*Thunk) (Value, error)
	Args  []*Thunk
}

// Thunk is a value computed at most once, on first use.
type Thunk struct {
	v     Value
	e     Expr
	env   *Env
	fn    func() (Value, error)
	state uint8 // 0 pending, 1 evaluating, 2 done
}

func valueThunk(v Value) *Thunk { return &Thunk{v: v, state: 2} }

// Env is a lexical scope; With is set for a `with` scope.
type Env struct {
	Vars     map[string]*Thunk
	With     *Thunk
	Parent   *Env
	building bool // Vars is being filled (let, rec): no lookups may be cached
	// One and OneT hold the argument of a plain lambda (x: ...), which
	// needs no map.
	One  string
	OneT *Thunk
}

// get finds name in this scope's own variables.
func (e *Env) get(name string) (*Thunk, bool) {
	if e.OneT != nil {
		if e.One == name {
			return e.OneT, true
		}
		return nil, false
	}
	t, ok := e.Vars[name]
	return t, ok
}

func typeName(v Value) string {
	switch v.(type) {
	case Null:
		return "null"
	case bool:
		return "a Boolean"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case string:
		return "a string"
	case Path:
		return "a path"
	case *List:
		return "a list"
	case *Attrs:
		return "a set"
	case *Lambda:
		return "a function"
	case *PrimOp:
		return "a built-in function"
	}
	return "an unknown value"
}

// typeOf is builtins.typeOf.
func typeOf(v Value) string {
	switch v.(type) {
	case Null:
		return "null"
	case bool:
		return "bool"
	case int64:
		return "int"
	case float64:
		return "float"
	case string:
		return "string"
	case Path:
		return "path"
	case *List:
		return "list"
	case *Attrs:
		return "set"
	}
	return "lambda"
}
