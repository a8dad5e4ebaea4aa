package nixeval

// Expr is a node of the expression tree.
type Expr interface{ pos() Pos }

type (
	IntExpr struct {
		P Pos
		V int64
	}
	FloatExpr struct {
		P Pos
		V float64
	}
	// StrExpr is a string; Parts are string literals and expressions to
	// interpolate.
	StrExpr struct {
		P     Pos
		Parts []any
	}
	PathExpr struct {
		P    Pos
		Path string
	} // absolute
	// SPathExpr is <name>, a lookup in NIX_PATH.
	SPathExpr struct {
		P    Pos
		Name string
	}
	VarExpr struct {
		P    Pos
		Name string
	}
	// SelectExpr is E.a.b or E.a.b or Def.
	SelectExpr struct {
		P    Pos
		E    Expr
		Path []AttrKey
		Def  Expr
	}
	HasAttrExpr struct {
		P    Pos
		E    Expr
		Path []AttrKey
	}
	ListExpr struct {
		P     Pos
		Elems []Expr
	}
	AttrsExpr struct {
		P     Pos
		Rec   bool
		Attrs map[string]*AttrDef
		Order []string
		Dyn   []DynAttr
	}
	LetExpr struct {
		P     Pos
		Binds *AttrsExpr
		Body  Expr
	}
	WithExpr struct {
		P           Pos
		Attrs, Body Expr
	}
	IfExpr struct {
		P                Pos
		Cond, Then, Else Expr
	}
	AssertExpr struct {
		P          Pos
		Cond, Body Expr
	}
	LambdaExpr struct {
		P       Pos
		Arg     string   // "" when only a pattern
		Formals *Formals // nil for a plain `x: ...`
		Body    Expr
	}
	CallExpr struct {
		P      Pos
		F, Arg Expr
	}
	BinExpr struct {
		P    Pos
		Op   string
		L, R Expr
	}
	NotExpr struct {
		P Pos
		E Expr
	}
	NegExpr struct {
		P Pos
		E Expr
	}
)

// AttrKey is one element of an attribute path: a static name, or an
// expression (`${e}` or a string with interpolation) when Expr is set.
type AttrKey struct {
	Name string
	Expr Expr
}

// AttrDef is one binding of an attribute set or let.
type AttrDef struct {
	P         Pos
	E         Expr
	Inherited bool // `inherit x;`: E is looked up in the enclosing scope
}

// DynAttr is a binding whose name is computed: "${k}" = v.
type DynAttr struct {
	P   Pos
	Key Expr
	E   Expr
}

// Formals is a lambda's set pattern { a, b ? d, ... }.
type Formals struct {
	Names    []string
	Defaults map[string]Expr
	Ellipsis bool
}

func (e *IntExpr) pos() Pos     { return e.P }
func (e *FloatExpr) pos() Pos   { return e.P }
func (e *StrExpr) pos() Pos     { return e.P }
func (e *PathExpr) pos() Pos    { return e.P }
func (e *SPathExpr) pos() Pos   { return e.P }
func (e *VarExpr) pos() Pos     { return e.P }
func (e *SelectExpr) pos() Pos  { return e.P }
func (e *HasAttrExpr) pos() Pos { return e.P }
func (e *ListExpr) pos() Pos    { return e.P }
func (e *AttrsExpr) pos() Pos   { return e.P }
func (e *LetExpr) pos() Pos     { return e.P }
func (e *WithExpr) pos() Pos    { return e.P }
func (e *IfExpr) pos() Pos      { return e.P }
func (e *AssertExpr) pos() Pos  { return e.P }
func (e *LambdaExpr) pos() Pos  { return e.P }
func (e *CallExpr) pos() Pos    { return e.P }
func (e *BinExpr) pos() Pos     { return e.P }
func (e *NotExpr) pos() Pos     { return e.P }
func (e *NegExpr) pos() Pos     { return e.P }
