package provision

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/fleetnix/fleet/flake"
	"github.com/fleetnix/fleet/remote"
)

// ErrSecretSource: fleet cannot tell where a declared .age file is, or
// the files are spread over more inputs than it stages.
var ErrSecretSource = errors.New("where the .age files are")

// sourceResolver works out where each declared .age file is: in the flake
// itself, or in one of its inputs. An evaluated spec names every file by
// its store path; each input's store path follows from its narHash in
// flake.lock (flake.SourcePath), and a path in no input's store path is
// the flake's own when the flake has that file.
type sourceResolver struct {
	lock    *flake.Lock
	lockErr error               // why there is no lock, said when one is needed
	inputs  map[string][]string // store path -> the inputs locked to it
	names   []string            // every input, for messages
	want    string              // --secrets-input: the operator says which
	flake   func() (*flake.Source, error)
}

// newSourceResolver reads the flake's lock (a missing lock is an error
// only once an input is needed) and prepares to list the flake's files
// (with git through r) when a file may be the flake's own. want is
// --secrets-input ("" to detect).
func newSourceResolver(ctx context.Context, r remote.Runner, flakeDir, want string) (*sourceResolver, error) {
	res := &sourceResolver{want: want, inputs: map[string][]string{}}
	// Without a lock (or with one fleet refuses) no file is found in an
	// input; reading the input's files later says what is wrong with it.
	var err error
	if res.lock, err = flake.ReadLock(filepath.Join(flakeDir, "flake.lock")); err == nil {
		ins, err := res.lock.Inputs()
		if err != nil {
			return nil, err
		}
		for _, in := range ins {
			res.names = append(res.names, in.Name)
			if in.Locked.NarHash == "" {
				continue
			}
			p, err := flake.SourcePath(in.Locked.NarHash)
			if err != nil {
				return nil, fmt.Errorf("flake.lock: input %s: %w", in.Name, err)
			}
			res.inputs[p] = append(res.inputs[p], in.Name)
		}
	}
	var src *flake.Source
	var srcErr error
	res.flake = func() (*flake.Source, error) {
		if src == nil && srcErr == nil {
			src, srcErr = flake.LocalSource(ctx, r, flakeDir)
		}
		return src, srcErr
	}
	return res, nil
}

// resolveSources resolves spec's secrets (see [sourceResolver.resolveSpec]).
func resolveSources(ctx context.Context, r remote.Runner, spec *Spec, flakeDir, want string) error {
	res, err := newSourceResolver(ctx, r, flakeDir, want)
	if err != nil {
		return err
	}
	return res.resolveSpec(spec)
}

// resolveSpec sets each secret's Input and makes its File relative to
// it, and sets spec.SecretsInput to the one input the files come from
// (SelfInput when they are all in the flake). A file given relative to
// its input (a spec file) is in its own Input, else --secrets-input, else
// spec.SecretsInput, else "secrets".
func (res *sourceResolver) resolveSpec(spec *Spec) error {
	want := res.want
	used := map[string]bool{}
	for _, n := range spec.SecretNames() {
		sec := spec.Secrets[n]
		if err := res.resolve(n, &sec, spec.SecretsInput); err != nil {
			return err
		}
		spec.Secrets[n] = sec
		used[sec.Input] = true
	}
	var fromInputs []string
	for in := range used {
		if in != SelfInput {
			fromInputs = append(fromInputs, in)
		}
	}
	slices.Sort(fromInputs)
	switch {
	case len(fromInputs) > 1:
		return fmt.Errorf("%w: host %s's .age files are in the inputs %s; fleet stages one secrets input (and the flake's own files)\nhint: keep them in one input, or in the flake", ErrSecretSource, spec.Name, strings.Join(fromInputs, " and "))
	case len(fromInputs) == 1:
		spec.SecretsInput = fromInputs[0]
	case len(used) > 0:
		spec.SecretsInput = SelfInput
	case want != "":
		spec.SecretsInput = want
	}
	return nil
}

// resolve sets sec.Input and makes sec.File relative to it.
func (res *sourceResolver) resolve(name string, sec *Secret, specInput string) error {
	sp, rel, ok := flake.SplitStorePath(sec.File)
	if !ok {
		// Relative, as a spec file gives it.
		if sec.Input == "" {
			sec.Input = firstOf(res.want, specInput, DefaultSecretsInput)
		}
		if sec.Input == SelfInput {
			return res.flakeFile(name, sec.File, sec.File)
		}
		return nil
	}
	in := res.inputs[sp]
	switch {
	case len(in) == 1 || (len(in) > 1 && slices.Contains(in, res.want)):
		got := in[0]
		if len(in) > 1 {
			got = res.want
		}
		if res.want != "" && res.want != got {
			return fmt.Errorf("%w: secrets.%s.file %s is in the input %s, not %s (--secrets-input)\nhint: drop --secrets-input, or pass --secrets-input %s", ErrSecretSource, name, sec.File, got, res.want, got)
		}
		sec.Input, sec.File = got, rel
		return res.checkRel(name, sec)
	case len(in) > 1:
		return fmt.Errorf("%w: secrets.%s.file %s is in the inputs %s, which are locked to the same source\nhint: pass --secrets-input with the one to stage", ErrSecretSource, name, sec.File, strings.Join(in, " and "))
	case res.want != "" && res.want != SelfInput && rel != "":
		// An input whose lock has no narHash: the operator says which.
		sec.Input, sec.File = res.want, rel
		return res.checkRel(name, sec)
	}
	f, err := res.selfFile(name, sec.File, rel)
	if err == nil && f == "" {
		f, err = res.selfCopy(name, sp)
	}
	if err != nil {
		if specInput != "" && specInput != SelfInput && rel != "" {
			// A spec file that names a store path and its input.
			sec.Input, sec.File = specInput, rel
			return nil
		}
		return err
	}
	if res.want != "" && res.want != SelfInput {
		return fmt.Errorf("%w: secrets.%s.file %s is the flake's own %s, not in the input %s (--secrets-input)\nhint: drop --secrets-input", ErrSecretSource, name, sec.File, f, res.want)
	}
	sec.Input, sec.File = SelfInput, f
	return nil
}

// checkRel: a file in an input is a path inside it.
func (res *sourceResolver) checkRel(name string, sec *Secret) error {
	if sec.File == "" || !filepath.IsLocal(sec.File) {
		return fmt.Errorf("%w: secrets.%s.file is the input %s itself, not a file in it", ErrSecretSource, name, sec.Input)
	}
	return nil
}

// selfFile maps rel, a path inside the flake's store path (relative to
// what Nix copies: the git work tree's top), to a file of the flake,
// relative to the flake's directory, that is staged with it: tracked by
// git, or in a path flake, a regular file there.
func (res *sourceResolver) selfFile(name, file, rel string) (string, error) {
	src, err := res.flake()
	if err != nil {
		return "", res.noFlake(name, file, err)
	}
	if rel == "" {
		return "", nil
	}
	// The flake's directory inside what Nix copies ("" unless the flake
	// is in a subdirectory of its git repository).
	sub := ""
	if src.Root != "" && src.Root != src.Dir {
		root, err1 := filepath.EvalSymlinks(src.Root)
		dir, err2 := filepath.EvalSymlinks(src.Dir)
		if s, err := filepath.Rel(root, dir); err1 == nil && err2 == nil && err == nil && s != "." {
			sub = filepath.ToSlash(s)
		}
	}
	f := rel
	if sub != "" {
		var ok bool
		if f, ok = strings.CutPrefix(rel, sub+"/"); !ok {
			return "", fmt.Errorf("%w: secrets.%s.file %s is outside the flake's directory %s, so it is not staged with the flake\nhint: move it into %s", ErrSecretSource, name, rel, src.Dir, src.Dir)
		}
	}
	return f, res.flakeFile(name, rel, f)
}

// flakeFile checks that f (relative to the flake's directory; shown as
// what) is a file staged with the flake: tracked by git, or in a path
// flake, a regular file there.
func (res *sourceResolver) flakeFile(name, what, f string) error {
	src, err := res.flake()
	if err != nil {
		return fmt.Errorf("secrets.%s.file: %w", name, err)
	}
	if !filepath.IsLocal(f) {
		return fmt.Errorf("%w: secrets.%s.file %q: want a path inside the flake", ErrSecretSource, name, what)
	}
	if src.Git && !slices.Contains(src.Files, f) {
		return fmt.Errorf("%w: secrets.%s.file %s is neither in the flake (git does not track %s in %s) nor in one of its inputs (%s)\nhint: git add it, or pass --secrets-input with the input that holds it", ErrSecretSource, name, what, f, src.Dir, orNone(res.names))
	}
	if fi, err := os.Lstat(filepath.Join(src.Dir, f)); err != nil || !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: secrets.%s.file %s is neither a file of the flake in %s nor in one of its inputs (%s)\nhint: pass --secrets-input with the input that holds it", ErrSecretSource, name, what, src.Dir, orNone(res.names))
	}
	return nil
}

// noFlake: a file in no input, and the flake's own files cannot be read.
func (res *sourceResolver) noFlake(name, file string, err error) error {
	return fmt.Errorf("%w: secrets.%s.file %s is in no input locked in flake.lock (%s), and the flake's own files cannot be read: %s\nhint: pass --secrets-input with the input that holds it (self: the flake), or name it in the spec file (\"secretsInput\")", ErrSecretSource, name, file, orNone(res.names), firstLine(err.Error()))
}

// selfCopy maps a store path that is a single file (what "${./x.age}"
// makes) to the flake's file it is a copy of: a file of the same name
// whose NAR hash gives that store path.
func (res *sourceResolver) selfCopy(name, storePath string) (string, error) {
	src, err := res.flake()
	if err != nil {
		return "", res.noFlake(name, storePath, err)
	}
	_, base, _ := strings.Cut(path.Base(storePath), "-")
	files := src.Files
	if !src.Git {
		files = nil
		filepath.WalkDir(src.Dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() && d.Name() == base {
				rel, _ := filepath.Rel(src.Dir, p)
				files = append(files, filepath.ToSlash(rel))
			}
			return nil
		})
	}
	for _, f := range files {
		if path.Base(f) != base {
			continue
		}
		if p, err := flake.FilePath(filepath.Join(src.Dir, f), base); err == nil && p == storePath {
			return f, nil
		}
	}
	return "", fmt.Errorf("%w: secrets.%s.file %s is neither a copy of a file of the flake in %s nor in one of its inputs (%s)\nhint: pass --secrets-input with the input that holds it", ErrSecretSource, name, storePath, src.Dir, orNone(res.names))
}

func firstOf(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

func orNone(names []string) string {
	if len(names) == 0 {
		return "it has none"
	}
	return strings.Join(names, ", ")
}

// needsInput reports whether some declared secret is in a flake input
// (not the flake itself): the installer then fetches that input.
func (s *Spec) needsInput() bool {
	for _, sec := range s.Secrets {
		if sec.Input != SelfInput {
			return true
		}
	}
	return false
}
