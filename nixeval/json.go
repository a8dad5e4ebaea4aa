package nixeval

import (
	"fmt"
	"math"
	"sort"
	"strconv"
)

// toJSONValue forces v completely and converts it to JSON-able Go values,
// as `nix-instantiate --eval --strict --json` prints them.
func (ev *evaluator) toJSONValue(pos Pos, v Value) (any, error) {
	ev.depth++
	defer func() { ev.depth-- }()
	if ev.depth > ev.opts.MaxDepth {
		return nil, limitf(pos, "stack overflow: value nested more than %d levels", ev.opts.MaxDepth)
	}
	// What is built here is what gets printed: charged like any value,
	// so a shared string printed a million times is not free.
	switch x := v.(type) {
	case Null:
		return nil, nil
	case bool, int64, float64:
		return x, nil
	case string:
		if err := ev.allocJSON(pos, costNode+int64(len(x))); err != nil {
			return nil, err
		}
		return x, nil
	case Path:
		return ev.storePath(pos, string(x))
	case *List:
		if err := ev.allocJSON(pos, costNode+2*costSlot*int64(len(x.Elems))); err != nil {
			return nil, err
		}
		out := make([]any, len(x.Elems))
		for i, t := range x.Elems {
			e, err := ev.force(t, pos)
			if err != nil {
				return nil, err
			}
			if out[i], err = ev.toJSONValue(pos, e); err != nil {
				return nil, err
			}
		}
		return out, nil
	case *Attrs:
		if _, ok := x.M["__toString"]; ok {
			return ev.coerceToString(pos, x, false, true)
		}
		if t, ok := x.M["outPath"]; ok {
			o, err := ev.force(t, pos)
			if err != nil {
				return nil, err
			}
			return ev.toJSONValue(pos, o)
		}
		if err := ev.allocJSON(pos, costNode+costEntry*int64(len(x.M))); err != nil {
			return nil, err
		}
		out := make(map[string]any, len(x.M))
		for _, k := range x.Keys() {
			// As Nix does, a value is named by the attribute holding
			// it, and list elements by their list's.
			at := x.posOf(k)
			e, err := ev.force(x.M[k], at)
			if err != nil {
				return nil, err
			}
			if out[k], err = ev.toJSONValue(at, e); err != nil {
				return nil, err
			}
		}
		return out, nil
	case *Lambda:
		return nil, errorf(x.E.P, "cannot convert a function to JSON")
	case *PrimOp:
		if len(x.Args) > 0 {
			return nil, errorf(pos, "cannot convert the partially applied built-in function '%s' to JSON", x.Name)
		}
		return nil, errorf(pos, "cannot convert the built-in function '%s' to JSON", x.Name)
	}
	return nil, errorf(pos, "cannot convert %s to JSON", typeName(v))
}

// MarshalJSON prints v (as returned by EvalFileJSON) exactly as Nix 2.8
// prints JSON: sorted keys, no spaces, floats with 6 significant digits,
// strings with only ", \, and control characters escaped.
func MarshalJSON(v any) []byte {
	return appendJSON(nil, v)
}

func appendJSON(b []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...)
	case bool:
		return strconv.AppendBool(b, x)
	case int64:
		return strconv.AppendInt(b, x, 10)
	case int:
		return strconv.AppendInt(b, int64(x), 10)
	case float64:
		return append(b, FormatFloat(x)...)
	case string:
		return appendString(b, x)
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSON(b, e)
		}
		return append(b, ']')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendJSON(b, x[k])
		}
		return append(b, '}')
	}
	return append(b, fmt.Sprintf("%q", fmt.Sprint(v))...)
}

// FormatFloat prints f like C++'s default ostream (%g, 6 digits).
func FormatFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case math.IsNaN(f):
		return "nan"
	}
	return strconv.FormatFloat(f, 'g', 6, 64)
}

func appendString(b []byte, s string) []byte {
	const hexd = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hexd[c>>4], hexd[c&15])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
