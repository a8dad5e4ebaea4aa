package nixeval

import (
	"errors"
	"fmt"
	"strings"
)

// ErrUnsupported is matched (errors.Is) by errors about a construct or
// builtin that Nix has but this package does not implement.
var ErrUnsupported = errors.New("not supported by the built-in evaluator")

// ErrLimit is matched by errors about a resource limit (depth, steps, size).
var ErrLimit = errors.New("evaluation limit exceeded")

// Source is a parsed file (or string) with what is needed to turn byte
// offsets into line:column.
type Source struct {
	Name string // file path as given, or "«string»"
	Dir  string // directory relative paths resolve against
	Text string
}

// Pos is a position in a Source.
type Pos struct {
	Src *Source
	Off int
}

// LineCol returns the 1-based line and column of p.
func (p Pos) LineCol() (int, int) {
	if p.Src == nil {
		return 0, 0
	}
	t := p.Src.Text
	if p.Off > len(t) {
		p.Off = len(t)
	}
	line := 1 + strings.Count(t[:p.Off], "\n")
	col := p.Off - strings.LastIndexByte(t[:p.Off], '\n')
	return line, col
}

func (p Pos) String() string {
	if p.Src == nil {
		return "«unknown»"
	}
	l, c := p.LineCol()
	return fmt.Sprintf("%s:%d:%d", p.Src.Name, l, c)
}

// Error is a parse or evaluation error at a position.
type Error struct {
	Pos  Pos
	Msg  string
	Kind error // ErrUnsupported, ErrLimit or nil
	Err  error // an underlying error (I/O), or nil
}

func (e *Error) Error() string {
	s := e.Msg
	if e.Pos.Src != nil {
		s = e.Pos.String() + ": " + s
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the kind and the underlying error.
func (e *Error) Unwrap() []error {
	var out []error
	if e.Kind != nil {
		out = append(out, e.Kind)
	}
	if e.Err != nil {
		out = append(out, e.Err)
	}
	return out
}

func errorf(p Pos, format string, args ...any) *Error {
	return &Error{Pos: p, Msg: fmt.Sprintf(format, args...)}
}

func unsupported(p Pos, what string) *Error {
	return &Error{Pos: p, Msg: what + " is not supported by the built-in evaluator", Kind: ErrUnsupported}
}

func limitf(p Pos, format string, args ...any) *Error {
	return &Error{Pos: p, Msg: fmt.Sprintf(format, args...), Kind: ErrLimit}
}
