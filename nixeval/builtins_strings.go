package nixeval

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"os"
	"strings"

	"github.com/BurntSushi/toml"
)

// fileStringBuiltins adds the builtins on files, strings, JSON and TOML, and the rest.
func fileStringBuiltins(b *Attrs) {
	add := func(name string, arity int, fn primFn) { addPrim(b, name, arity, fn) }
	add("readFile", 1, func(ev *evaluator, pos Pos, a []*Thunk) (Value, error) {
		p, err := ev.forcePath(a[0], pos)
		if err != nil {
			return nil, err
		}
		b, err := ev.readFile(pos, p)
		if err != nil {
			return nil, err
		}
		if bytes.IndexByte(b, 0) >= 0 {
			return nil, errorf(pos, "the contents of the file '%s' cannot be represented as a Nix string", p)
		}
		return string(b), nil
	})
	add("readDir", 1, func(ev *evaluator, pos Pos, a []*Thunk) (Value, error) {
		p, err := ev.forcePath(a[0], pos)
		if err != nil {
			return nil, err
		}
		real, err := ev.confine(pos, p, true)
		if err != nil {
			return nil, err
		}
		ents, err := os.ReadDir(real)
		if err != nil {
			return nil, &Error{Pos: pos, Msg: "cannot read directory '" + p + "'", Err: unwrapPathErr(err)}
		}
		if err := ev.alloc(pos, costNode+(costEntry+costThunk)*int64(len(ents))); err != nil {
			return nil, err
		}
		out := &Attrs{M: map[string]*Thunk{}}
		for _, e := range ents {
			t := "unknown"
			switch m := e.Type(); {
			case m.IsRegular():
				t = "regular"
			case m.IsDir():
				t = "directory"
			case m&os.ModeSymlink != 0:
				t = "symlink"
			}
			out.M[e.Name()] = valueThunk(t)
		}
		return out, nil
	})
	add("pathExists", 1, func(ev *evaluator, pos Pos, a []*Thunk) (Value, error) {
		p, err := ev.forcePath(a[0], pos)
		if err != nil {
			return nil, err
		}
		real, err := ev.confine(pos, p, true)
		if err != nil {
			return nil, err
		}
		_, err = os.Stat(real)
		return err == nil, nil
	})
	add("baseNameOf", 1, func(ev *evaluator, pos Pos, a []*Thunk) (Value, error) {
		v, err := ev.force(a[0], pos)
		if err != nil {
			return nil, err
		}
		s, err := ev.coerceToString(pos, v, false, false)
		if err != nil {
			return nil, err
		}
		s = strings.TrimSuffix(s, "/")
		return s[strings.LastIndexByte(s, '/')+1:], nil
	})
	add("dirOf", 1, func(ev *evaluator, pos Pos, a []*Thunk) (Value, error) {
		v, err := ev.force(a[0], pos)
		if err != nil {
			return nil, err
		}
		s, err := ev.coerceToString(pos, v, false, false)
		if err != nil {
			return nil, err
		}
		i := strings.LastIndexByte(s, '/')
		d := "."
		if i == 0 {
			d = "/"
		} else if i > 0 {
			d = s[:i]
		}
		if _, ok := v.(Path); ok {
			return Path(d), nil
		}
		return d, nil
	})
	add("fromJSON", 1, func(ev *evaluator, pos Pos, a []*Thunk) (Value, error) {
		s, err := ev.forceString(a[0], pos)
		if err != nil {
			return nil, err
		}
		return ev.fromJSON(pos, s)
	})
	add("fromTOML", 1, func(ev *evaluator, pos Pos, a []*Thunk) (Value, error) {
		s, err := ev.forceString(a[0], pos)
		if err != nil {
			return nil, err
		}
		var m map[string]any
		if _, err := toml.Decode(s, &m); err != nil {
			return nil, &Error{Pos: pos, Msg: "while parsing a TOML string", Err: err}
		}
		return ev.fromGo(pos, m)
	})
	add("toJSON", 1, func(ev *evaluator, pos Pos, a []*Thunk) (Value, error) {
		v, err := ev.force(a[0], pos)
		if err != nil {
			return nil, err
		}
		j, err := ev.toJSONValue(pos, v)
		if err != nil {
			return nil, err
		}
		// toJSONValue charged what the text holds; this is the text.
		out := MarshalJSON(j)
		if len(out) > ev.opts.MaxBytes {
			return nil, limitf(pos, "string longer than %d bytes", ev.opts.MaxBytes)
		}
		if err := ev.alloc(pos, int64(len(out))); err != nil {
			return nil, err
		}
		return string(out), nil
	})
	add("stringLength", 1, func(ev *evaluator, pos Pos, a []*Thunk) (Value, error) {
		v, err := ev.force(a[0], pos)
		if err != nil {
			return nil, err
		}
		s, err := ev.coerceToString(pos, v, false, true)
		if err != nil {
			return nil, err
		}
		return int64(len(s)), nil
	})
	add("substring", 3, func(ev *evaluator, pos Pos, a []*Thunk) (Value, error) {
		start, err := ev.forceInt(a[0], pos)
		if err != nil {
			return nil, err
		}
		n, err := ev.forceInt(a[1], pos)
		if err != nil {
			return nil, err
		}
		v, err := ev.force(a[2], pos)
		if err != nil {
			return nil, err
		}
		s, err := ev.coerceToString(pos, v, false, true)
		if err != nil {
			return nil, err
		}
		if start < 0 {
			return nil, errorf(pos, "negative start position in 'substring'")
		}
		if start >= int64(len(s)) {
			return "", nil
		}
		end := int64(len(s))
		if n >= 0 && start+n < end {
			end = start + n
		}
		return s[start:end], nil
	})
	add("replaceStrings", 3, biReplaceStrings)
	add("split", 2, biSplit)
	add("match", 2, biMatch)
	add("concatStringsSep", 2, func(ev *evaluator, pos Pos, a []*Thunk) (Value, error) {
		sep, err := ev.forceString(a[0], pos)
		if err != nil {
			return nil, err
		}
		l, err := ev.forceList(a[1], pos)
		if err != nil {
			return nil, err
		}
		b := ev.newString(pos)
		for i, t := range l.Elems {
			if i > 0 {
				if err := b.add(sep); err != nil {
					return nil, err
				}
			}
			v, err := ev.force(t, pos)
			if err != nil {
				return nil, err
			}
			s, err := ev.coerceToString(pos, v, false, true)
			if err != nil {
				return nil, err
			}
			if err := b.add(s); err != nil {
				return nil, err
			}
		}
		return b.String(), nil
	})
	add("hashString", 2, func(ev *evaluator, pos Pos, a []*Thunk) (Value, error) {
		algo, err := ev.forceString(a[0], pos)
		if err != nil {
			return nil, err
		}
		s, err := ev.forceString(a[1], pos)
		if err != nil {
			return nil, err
		}
		var sum []byte
		switch algo {
		case "md5":
			h := md5.Sum([]byte(s))
			sum = h[:]
		case "sha1":
			h := sha1.Sum([]byte(s))
			sum = h[:]
		case "sha256":
			h := sha256.Sum256([]byte(s))
			sum = h[:]
		case "sha512":
			h := sha512.Sum512([]byte(s))
			sum = h[:]
		default:
			return nil, errorf(pos, "unknown hash algorithm '%s'", algo)
		}
		return hex.EncodeToString(sum), nil
	})
	add("getEnv", 1, func(ev *evaluator, pos Pos, a []*Thunk) (Value, error) {
		s, err := ev.forceString(a[0], pos)
		if err != nil {
			return nil, err
		}
		v := os.Getenv(s)
		if err := ev.alloc(pos, int64(len(v))); err != nil {
			return nil, err
		}
		return v, nil
	})
	add("seq", 2, func(ev *evaluator, pos Pos, a []*Thunk) (Value, error) {
		if _, err := ev.force(a[0], pos); err != nil {
			return nil, err
		}
		return ev.force(a[1], pos)
	})
	add("deepSeq", 2, func(ev *evaluator, pos Pos, a []*Thunk) (Value, error) {
		v, err := ev.force(a[0], pos)
		if err != nil {
			return nil, err
		}
		if err := ev.deepForce(pos, v); err != nil {
			return nil, err
		}
		return ev.force(a[1], pos)
	})
	add("trace", 2, func(ev *evaluator, pos Pos, a []*Thunk) (Value, error) {
		if _, err := ev.force(a[0], pos); err != nil {
			return nil, err
		}
		return ev.force(a[1], pos)
	})
	add("typeOf", 1, func(ev *evaluator, pos Pos, a []*Thunk) (Value, error) {
		v, err := ev.force(a[0], pos)
		if err != nil {
			return nil, err
		}
		return typeOf(v), nil
	})
	for name, typ := range map[string]string{"isList": "list", "isAttrs": "set", "isString": "string", "isInt": "int", "isFloat": "float", "isBool": "bool", "isNull": "null", "isPath": "path", "isFunction": "lambda"} {
		typ := typ
		add(name, 1, func(ev *evaluator, pos Pos, a []*Thunk) (Value, error) {
			v, err := ev.force(a[0], pos)
			if err != nil {
				return nil, err
			}
			return typeOf(v) == typ, nil
		})
	}
	for _, op := range []struct{ name, op string }{{"add", "+"}, {"sub", "-"}, {"mul", "*"}, {"div", "/"}} {
		op := op
		add(op.name, 2, func(ev *evaluator, pos Pos, a []*Thunk) (Value, error) {
			x, err := ev.force(a[0], pos)
			if err != nil {
				return nil, err
			}
			y, err := ev.force(a[1], pos)
			if err != nil {
				return nil, err
			}
			return arith(pos, op.op, x, y)
		})
	}
	add("lessThan", 2, func(ev *evaluator, pos Pos, a []*Thunk) (Value, error) {
		x, err := ev.force(a[0], pos)
		if err != nil {
			return nil, err
		}
		y, err := ev.force(a[1], pos)
		if err != nil {
			return nil, err
		}
		return ev.less(x, y, pos)
	})
}
