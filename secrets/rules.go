package secrets

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"filippo.io/age"
	"filippo.io/age/agessh"
	"filippo.io/age/plugin"
	"golang.org/x/crypto/ssh"

	"github.com/fleetnix/fleet/internal/realpath"
	"github.com/fleetnix/fleet/nixeval"
	"github.com/fleetnix/fleet/remote"
)

// Evaluator chooses how the rules file (a Nix expression) is evaluated.
type Evaluator string

const (
	// EvalAuto uses the built-in evaluator and falls back to one
	// nix-instantiate call when the file uses something it does not
	// support and Nix is installed.
	EvalAuto Evaluator = "auto"
	// EvalBuiltin uses only fleet's own evaluator (package nixeval).
	EvalBuiltin Evaluator = "builtin"
	// EvalNix runs `nix-instantiate --eval --strict --json` on the file.
	EvalNix Evaluator = "nix"
)

// ParseEvaluator checks a --evaluator value.
func ParseEvaluator(s string) (Evaluator, error) {
	switch e := Evaluator(s); e {
	case EvalAuto, EvalBuiltin, EvalNix:
		return e, nil
	case "":
		return EvalAuto, nil
	}
	return "", fmt.Errorf("unknown evaluator %q\nhint: use auto, builtin or nix", s)
}

// Rule is one entry of the rules file: an encrypted file and who can read it.
type Rule struct {
	File       string   // key in secrets.nix, relative to the rules file's directory, e.g. "hosts/nas/smb.age"
	PublicKeys []string // recipients as written (trimmed of surrounding whitespace/newline)
	Armor      bool
}

// Rules is an evaluated and validated rules file.
type Rules struct {
	Path    string // the rules file
	Dir     string // its directory; Rule.File is relative to it
	Entries []Rule // sorted by File
	Raw     any    // the evaluated value as JSON-able Go values

	real     sync.Once // resolves Dir's symlinks once, for FilePath
	realPath string
}

// ErrInvalidRules is wrapped by every validation failure of a rules file.
var ErrInvalidRules = errors.New("invalid rules")

// NixInstantiate is the program EvalNix runs (a variable so tests can swap it).
var NixInstantiate = "nix-instantiate"

// Runner runs nix-instantiate; nil means remote.Local without logging.
var Runner remote.Runner

// DefaultRulesPath is $RULES if set (as agenix reads it), else ./secrets.nix.
func DefaultRulesPath() string {
	if p := os.Getenv("RULES"); p != "" {
		return p
	}
	return "./secrets.nix"
}

// LoadRules evaluates the rules file at path with ev and validates it.
func LoadRules(ctx context.Context, path string, ev Evaluator) (*Rules, error) {
	raw, err := EvalRules(ctx, path, ev)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	r := &Rules{Path: path, Dir: filepath.Dir(abs), Raw: raw}
	r.Entries, err = validate(filepath.Clean(path), raw)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// EvalRules evaluates the rules file at path with ev, without validating
// it, and returns the value as JSON-able Go values (what
// `nix-instantiate --eval --strict --json` prints).
func EvalRules(ctx context.Context, path string, ev Evaluator) (any, error) {
	if ev == "" {
		ev = EvalAuto
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("read rules: %w\nhint: pass --rules FILE or set RULES", err)
	}
	switch ev {
	case EvalNix:
		return evalNix(ctx, path)
	case EvalBuiltin, EvalAuto:
		v, err := nixeval.EvalFileJSON(ctx, path, nixeval.Options{})
		if err == nil {
			// Raw holds the same Go values whichever evaluator produced it.
			return asNixJSON(v), nil
		}
		if ev == EvalAuto && errors.Is(err, nixeval.ErrUnsupported) {
			if _, lerr := exec.LookPath(NixInstantiate); lerr == nil {
				return evalNix(ctx, path)
			}
			return nil, fmt.Errorf("read rules: %w\nhint: install Nix (nix-instantiate) to read this file", err)
		}
		if errors.Is(err, nixeval.ErrUnsupported) {
			return nil, fmt.Errorf("read rules: %w\nhint: use --evaluator auto or nix (needs nix-instantiate)", err)
		}
		if errors.Is(err, nixeval.ErrForbidden) {
			return nil, fmt.Errorf("read rules: %w\nhint: the rules may read files of their own repository only (the git work tree holding them, or their directory when none does)", err)
		}
		return nil, fmt.Errorf("read rules: %w", err)
	}
	return nil, fmt.Errorf("unknown evaluator %q\nhint: use auto, builtin or nix", ev)
}

func evalNix(ctx context.Context, path string) (any, error) {
	r := Runner
	if r == nil {
		r = &remote.Local{}
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	// --readonly-mode: path values become store paths without writing to the store.
	res, err := r.Run(ctx, remote.Cmd{Args: []string{NixInstantiate, "--readonly-mode", "--eval", "--strict", "--json", abs}})
	if err != nil {
		return nil, fmt.Errorf("read rules with nix: %w", err)
	}
	return DecodeJSON(res.Stdout)
}

// DecodeJSON decodes Nix JSON output into Go values, with integers as
// int64 and other numbers as float64.
func DecodeJSON(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, fmt.Errorf("decode nix json: %w", err)
	}
	return fixNumbers(v), nil
}

// asNixJSON makes builtin output equal to decoded Nix JSON: a float is
// what its printed form (6 significant digits) decodes to, so 1.0 is
// the int64 1 and 0.1+0.2 is 0.3.
func asNixJSON(v any) any {
	switch x := v.(type) {
	case float64:
		s := nixeval.FormatFloat(x)
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return i
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return f
		}
	case map[string]any:
		for k, e := range x {
			x[k] = asNixJSON(e)
		}
	case []any:
		for i, e := range x {
			x[i] = asNixJSON(e)
		}
	}
	return v
}

func fixNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = fixNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = fixNumbers(e)
		}
	}
	return v
}

const recipientHint = "use ssh-ed25519, ssh-rsa (>= 2048 bits) or age1 keys"

// RulesError is a validation failure of a rules file; it matches
// ErrInvalidRules with errors.Is.
type RulesError struct {
	File  string // the rules file
	Entry string // the entry (a file name), "" for the whole file
	Key   string // the offending attribute, e.g. "publicKeys[1]"
	Msg   string
	Hint  string
}

func (e *RulesError) Error() string {
	var b strings.Builder
	b.WriteString(e.File + ": ")
	if e.Entry != "" {
		fmt.Fprintf(&b, "%q: ", e.Entry)
	}
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Msg)
	if e.Hint != "" {
		b.WriteString("\nhint: " + e.Hint)
	}
	return b.String()
}

// Unwrap makes a RulesError match ErrInvalidRules.
func (e *RulesError) Unwrap() error { return ErrInvalidRules }

func validate(name string, raw any) ([]Rule, error) {
	top, ok := raw.(map[string]any)
	if !ok {
		return nil, &RulesError{File: name, Msg: "the rules must be an attribute set, got " + jsonType(raw), Hint: `write { "file.age".publicKeys = [ "ssh-ed25519 ..." ]; }`}
	}
	files := make([]string, 0, len(top))
	for k := range top {
		files = append(files, k)
	}
	sort.Strings(files)
	var out []Rule
	checked := map[string]error{}  // recipients repeat across entries: parse each once
	cleaned := map[string]string{} // clean path -> entry, to find two entries for one file
	for _, f := range files {
		fail := func(key, hint, format string, args ...any) error {
			return &RulesError{File: name, Entry: f, Key: key, Msg: fmt.Sprintf(format, args...), Hint: hint}
		}
		if err := checkEntryPath(f); err != nil {
			return nil, fail("", "name the file relative to the rules file, inside its directory", "%v", err)
		}
		c := filepath.ToSlash(filepath.Clean(filepath.FromSlash(f)))
		if other, dup := cleaned[c]; dup {
			return nil, fail("", "keep one entry per file", "names the same file as %q", other)
		}
		cleaned[c] = f
		e, ok := top[f].(map[string]any)
		if !ok {
			return nil, fail("", `write "`+f+`".publicKeys = [ ... ];`, "must be an attribute set with publicKeys, got %s", jsonType(top[f]))
		}
		rule := Rule{File: f}
		pk, ok := e["publicKeys"]
		if !ok {
			return nil, fail("publicKeys", `add publicKeys = [ "ssh-ed25519 ..." ];`, "missing")
		}
		list, ok := pk.([]any)
		if !ok {
			return nil, fail("publicKeys", "", "must be a list of strings, got %s", jsonType(pk))
		}
		if len(list) == 0 {
			return nil, fail("publicKeys", "add at least one recipient", "empty list")
		}
		seen := map[string]int{}
		for i, k := range list {
			key := fmt.Sprintf("publicKeys[%d]", i)
			s, ok := k.(string)
			if !ok {
				return nil, fail(key, "", "must be a string, got %s", jsonType(k))
			}
			s = strings.TrimSpace(s)
			if j, dup := seen[s]; dup {
				return nil, fail(key, "remove the duplicate", "same recipient as publicKeys[%d] (%q)", j, shorten(s))
			}
			seen[s] = i
			err, done := checked[s]
			if !done {
				err = checkRecipient(s)
				checked[s] = err
			}
			if err != nil {
				return nil, fail(key, recipientHint, "not a recipient fleet can use (%q): %v", shorten(s), err)
			}
			rule.PublicKeys = append(rule.PublicKeys, s)
		}
		if a, ok := e["armor"]; ok {
			b, ok := a.(bool)
			if !ok {
				return nil, fail("armor", "write armor = true; or armor = false;", "must be a bool, got %s", jsonType(a))
			}
			rule.Armor = b
		}
		out = append(out, rule)
	}
	return out, nil
}

// checkEntryPath checks that a rules entry names a file inside the rules
// file's directory, as written: relative, and not climbing out of it with
// "..". (A symlink that leads out is caught where the file is used, by
// [Rules.FilePath].)
func checkEntryPath(f string) error {
	p := filepath.FromSlash(f)
	switch {
	case f == "":
		return errors.New("an empty file name")
	case filepath.IsAbs(p) || strings.HasPrefix(f, "/"):
		return errors.New("an absolute path: the file must be inside the rules file's directory")
	case !filepath.IsLocal(p):
		return errors.New("climbs out of the rules file's directory")
	case filepath.Clean(p) == ".":
		return errors.New("names the rules file's directory, not a file")
	}
	return nil
}

// checkRecipient parses s as a recipient age can encrypt to.
func checkRecipient(s string) error {
	typ, _, _ := strings.Cut(s, " ")
	switch {
	case typ == ssh.KeyAlgoED25519 || typ == ssh.KeyAlgoRSA:
		pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(s))
		if err != nil {
			return fmt.Errorf("malformed %s public key", typ)
		}
		if cpk, ok := pk.(ssh.CryptoPublicKey); ok {
			if rk, ok := cpk.CryptoPublicKey().(*rsa.PublicKey); ok && rk.N.BitLen() < 2048 {
				return fmt.Errorf("ssh-rsa key of %d bits is too short", rk.N.BitLen())
			}
		}
		if _, err := agessh.ParseRecipient(s); err != nil {
			return errors.New("age cannot use this ssh key")
		}
		return nil
	case strings.Contains(typ, "ssh-") || strings.HasPrefix(typ, "ecdsa-") || strings.HasPrefix(typ, "sk-"):
		return fmt.Errorf("unsupported ssh key type %s", typ)
	case strings.HasPrefix(s, "age1pq1"):
		if _, err := age.ParseHybridRecipient(s); err != nil {
			return errors.New("malformed age1pq1 recipient")
		}
		return nil
	case strings.HasPrefix(s, "age1"):
		if _, err := age.ParseX25519Recipient(s); err == nil {
			return nil
		}
		if _, _, err := plugin.ParseRecipient(s); err == nil {
			return nil
		}
		return errors.New("malformed age1 recipient")
	}
	return errors.New("unknown recipient type")
}

// shorten abbreviates a long key for messages: "ssh-ed25519 AAAAC3Nz…".
func shorten(s string) string {
	if len(s) <= 24 {
		return s
	}
	return s[:20] + "..."
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a bool"
	case string:
		return "a string"
	case int64, float64:
		return "a number"
	case []any:
		return "a list"
	case map[string]any:
		return "an attribute set"
	}
	return fmt.Sprintf("%T", v)
}

// ErrOutside is wrapped when a rules entry's file, once symlinks are
// resolved, is not inside the rules file's directory.
var ErrOutside = errors.New("outside the rules file's directory")

// FilePath returns where e's file is: in r.Dir, as the rules name it. It
// refuses a file that symlinks lead out of r.Dir (a link to another
// repository's secret would otherwise be decrypted, re-encrypted to this
// rule's recipients and written here) with an error wrapping [ErrOutside].
// Entries that climb out as written are refused by [LoadRules].
func (r *Rules) FilePath(e Rule) (string, error) {
	rel := filepath.FromSlash(e.File)
	p := filepath.Join(r.Dir, rel)
	r.real.Do(func() { r.realPath = realpath.Resolve(r.Dir) })
	dir := r.realPath
	if real := resolveUnder(dir, rel); !realpath.Within(real, dir) {
		return "", fmt.Errorf("resolves to %s, %w %s", real, ErrOutside, dir)
	}
	return p, nil
}

// resolveUnder resolves rel below dir (whose own symlinks are resolved):
// each component is looked at once, and only a symlink sends the rest
// through resolvePath. A component that does not exist ends the walk.
func resolveUnder(dir, rel string) string {
	parts := strings.Split(filepath.Clean(rel), string(filepath.Separator))
	cur := dir
	for i, part := range parts {
		next := filepath.Join(cur, part)
		rest := filepath.Join(append([]string{next}, parts[i+1:]...)...)
		st, err := os.Lstat(next)
		switch {
		case err != nil:
			return rest
		case st.Mode()&os.ModeSymlink != 0:
			return realpath.Resolve(rest)
		}
		cur = next
	}
	return cur
}

// Lookup finds the rule of file, given relative to r.Dir ("x.age",
// "./x.age") or as an absolute path inside r.Dir.
func (r *Rules) Lookup(file string) (Rule, bool) {
	f := file
	if filepath.IsAbs(f) {
		rel, err := filepath.Rel(r.Dir, f)
		if err != nil || strings.HasPrefix(rel, "..") {
			return Rule{}, false
		}
		f = rel
	}
	f = filepath.ToSlash(filepath.Clean(f))
	for _, e := range r.Entries {
		if e.File == file || filepath.ToSlash(filepath.Clean(e.File)) == f {
			return e, true
		}
	}
	return Rule{}, false
}
