package provision

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/charmbracelet/log"
	"golang.org/x/crypto/ssh"

	"github.com/fleetnix/fleet/flake"
	"github.com/fleetnix/fleet/remote"
	"github.com/fleetnix/fleet/secrets"
)

// FleetOptions are one `fleet verify --all`: which hosts of which flake,
// where each is, which identities decrypt their secrets locally, and how
// many are checked at once.
type FleetOptions struct {
	FlakeDir string
	Hosts    []string // nil: every nixosConfiguration of the flake
	// SecretsDirs are local clones of the inputs holding the .age files,
	// each matched to the input whose locked rev it has; an input without
	// one is cloned from its locked URL.
	SecretsDirs  []string
	SecretsInput string // --secrets-input, "" to detect per host

	// Targets say where a host is; a host not in it is reached by its
	// name (the nixosConfigurations attribute), as an ssh_config alias or
	// a DNS name.
	Targets map[string]remote.Target
	// HostKeys pin a host's key by fingerprint; the others are checked
	// against known_hosts (Dial.HostKey).
	HostKeys map[string]string
	// Identities decrypt every host's secrets locally (an operator's key
	// that secrets.nix gives every file); HostIdentities are tried for one
	// host, with them. Any identity that decrypts a file will do: the
	// host's own copy is compared by sha256.
	Identities     []string
	HostIdentities map[string][]string
	Passphrase     secrets.PassphraseFunc // for encrypted identities; nil: refuse them

	Dial     remote.Options
	Parallel int // hosts checked at once (default 16)
	Log      *log.Logger
	// LocalRunner runs nix and git here (default remote.Local).
	LocalRunner remote.Runner
}

// The host key states of a [HostResult].
const (
	KeyOK       = "ok"       // the host presented the pinned or known key
	KeyMismatch = "mismatch" // it presented another one
	KeyUnknown  = "unknown"  // no pin and no known_hosts entry
)

// HostResult is one host of `fleet verify --all`.
type HostResult struct {
	Host      string `json:"host"`
	Target    string `json:"target"`
	Reachable bool   `json:"reachable"`
	// HostKey is KeyOK, KeyMismatch or KeyUnknown once the host answered
	// ("" when it did not); Fingerprint is the key it presented.
	HostKey      string   `json:"host_key"`
	Fingerprint  string   `json:"fingerprint,omitempty"`
	SecretsOK    int      `json:"secrets_ok"`
	SecretsTotal int      `json:"secrets_total"`
	Failed       []string `json:"failed"` // what failed, one line each: "openai-key: content differs ..."
	Report       *Report  `json:"report,omitempty"`
	OK           bool     `json:"ok"`
}

// VerifyFleet checks every host of the flake (or the named ones), up to
// Parallel at once, as [VerifyHost] checks one: one nix eval gives every
// host's spec, the .age files are read and decrypted locally (each input
// cloned at most once), then each host is reached over SSH with its key
// checked and its secrets compared. A host that fails (unreachable, a
// host key that does not match, a secret that does not) is a result with
// OK false; the error is for the fleet as a whole (the flake, the options).
func VerifyFleet(ctx context.Context, o FleetOptions) ([]HostResult, error) {
	if o.Parallel < 1 {
		o.Parallel = 16
	}
	if o.LocalRunner == nil {
		o.LocalRunner = &remote.Local{Log: o.Log}
	}
	if o.Log == nil {
		o.Log = log.New(io.Discard)
	}
	local := o.LocalRunner
	lock, lockErr := flake.ReadLock(filepath.Join(o.FlakeDir, "flake.lock"))
	var clones map[string]string
	var nixArgs []string
	if lockErr == nil && len(o.SecretsDirs) > 0 && o.SecretsInput != SelfInput {
		clones = matchClones(ctx, local, lock, o.SecretsDirs, "")
		nixArgs = cloneOverrides(lock, clones)
	}
	specs, evalFailed, err := EvalFleet(ctx, local, o.FlakeDir, o.Hosts, nixArgs...)
	if err != nil {
		return nil, err
	}
	res, err := newSourceResolver(ctx, local, o.FlakeDir, o.SecretsInput)
	if err != nil {
		return nil, err
	}
	names := slices.Sorted(maps.Keys(specs))
	for n := range evalFailed {
		names = append(names, n)
	}
	slices.Sort(names)
	var noIdentity []string
	for _, n := range names {
		if s := specs[n]; s != nil && len(s.Secrets) > 0 && len(o.Identities) == 0 && len(o.HostIdentities[n]) == 0 {
			noIdentity = append(noIdentity, n)
		}
	}
	if len(noIdentity) > 0 {
		return nil, badOption("no --host-identity decrypts the secrets of %s\nhint: pass --host-identity FILE with an identity every .age file is encrypted to (the operator's, in secrets.nix), or --host-identity HOST=FILE per host", strings.Join(noIdentity, ", "))
	}
	for h := range o.HostIdentities {
		if _, ok := specs[h]; !ok && evalFailed[h] == nil {
			return nil, badOption("--host-identity %s=...: the flake has no host %s checked here", h, h)
		}
	}

	out := make([]HostResult, len(names))
	prep := map[string]*fleetHost{}
	sources := &inputSources{lock: lock, lockErr: lockErr, clones: clones, r: local, open: map[string]*SecretsSource{}}
	defer sources.close()
	for i, n := range names {
		t, ok := o.Targets[n]
		if !ok {
			t = remote.Target{Host: n}
		}
		out[i] = HostResult{Host: n, Target: t.String(), Failed: []string{}}
		if err := evalFailed[n]; err != nil {
			out[i].Failed = append(out[i].Failed, "spec: "+firstLine(err.Error()))
			continue
		}
		s := specs[n]
		out[i].SecretsTotal = len(s.Secrets)
		if err := res.resolveSpec(s); err != nil {
			out[i].Failed = append(out[i].Failed, "secrets: "+firstLine(err.Error()))
			continue
		}
		files, err := sources.files(ctx, s, o.FlakeDir)
		if err != nil {
			out[i].Failed = append(out[i].Failed, "secrets: "+firstLine(err.Error()))
			continue
		}
		ids, err := secrets.LoadIdentities(append(slices.Clone(o.Identities), o.HostIdentities[n]...), o.Passphrase)
		if err != nil && len(s.Secrets) > 0 {
			return nil, fmt.Errorf("host %s: %w", n, err)
		}
		prep[n] = &fleetHost{spec: s, target: t, files: files, ids: ids}
	}

	sem := make(chan struct{}, o.Parallel)
	var wg sync.WaitGroup
	for i := range out {
		h := prep[out[i].Host]
		if h == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				out[i].Failed = append(out[i].Failed, "interrupted")
				return
			}
			defer func() { <-sem }()
			h.verify(ctx, o, &out[i])
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return out, err
	}
	for i := range out {
		out[i].OK = len(out[i].Failed) == 0
	}
	return out, nil
}

// fleetHost is one host ready to check: its spec, where it is, its .age
// files and the identities that decrypt them.
type fleetHost struct {
	spec   *Spec
	target remote.Target
	files  *SecretFiles
	ids    *secrets.Identities
}

// verify decrypts h's secrets locally, reaches the host and checks it,
// filling in res.
func (h *fleetHost) verify(ctx context.Context, o FleetOptions, res *HostResult) {
	want := map[string]string{}
	var undecrypted []string // why a secret did not decrypt here, one line each
	if len(h.spec.Secrets) > 0 {
		want, undecrypted = DecryptAll(ctx, o.LocalRunner, h.spec, h.files, h.ids)
	}
	dial := o.Dial
	if pin := o.HostKeys[h.spec.Name]; pin != "" {
		dial.HostKey = remote.HostKeyPolicy{Pin: pin}
	}
	c, err := remote.Dial(remote.WithPhase(ctx, PhaseVerify), h.target, dial)
	switch {
	case errors.Is(err, remote.ErrHostKeyMismatch):
		res.Reachable, res.HostKey = true, KeyMismatch
		res.Failed = append(res.Failed, "host key: "+firstLine(err.Error()))
		return
	case errors.Is(err, remote.ErrUnknownHost):
		res.Reachable, res.HostKey = true, KeyUnknown
		res.Failed = append(res.Failed, "host key: "+firstLine(err.Error()))
		return
	case err != nil:
		res.Failed = append(res.Failed, "unreachable: "+firstLine(err.Error()))
		return
	}
	defer c.Close()
	res.Reachable, res.HostKey, res.Fingerprint = true, KeyOK, ssh.FingerprintSHA256(c.HostKey())
	rep, err := Verify(remote.WithPhase(ctx, PhaseVerify), c, h.spec, want)
	if err != nil {
		res.Failed = append(res.Failed, "verify: "+firstLine(err.Error()))
		return
	}
	res.Report = rep
	for i, sc := range rep.Secrets {
		if _, ok := want[sc.Name]; !ok {
			// Not decrypted here: the host's copy cannot be compared.
			why := "no identity given decrypts it here"
			for _, l := range undecrypted {
				if rest, ok := strings.CutPrefix(l, sc.Name+" "); ok {
					why = rest
				} else if rest, ok := strings.CutPrefix(l, sc.Name+": "); ok {
					why = rest
				}
			}
			rep.Secrets[i].OK = false
			rep.Secrets[i].Problems = append(rep.Secrets[i].Problems, "content unchecked: "+why)
			rep.OK = false
			sc = rep.Secrets[i]
		}
		if sc.OK {
			res.SecretsOK++
			continue
		}
		res.Failed = append(res.Failed, sc.Name+": "+strings.Join(sc.Problems, "; "))
	}
	for _, ic := range rep.Identities {
		if !ic.OK {
			res.Failed = append(res.Failed, "identity "+ic.Path+": "+strings.Join(ic.Problems, "; "))
		}
	}
}

// inputSources opens each input that holds .age files once, for every
// host: from its matched clone (--secrets-dir), else a clone of its
// locked URL.
type inputSources struct {
	lock    *flake.Lock
	lockErr error
	clones  map[string]string
	r       remote.Runner
	open    map[string]*SecretsSource
}

// files are spec's .age files.
func (s *inputSources) files(ctx context.Context, spec *Spec, flakeDir string) (*SecretFiles, error) {
	f := &SecretFiles{FlakeDir: flakeDir}
	if !spec.needsInput() {
		return f, nil
	}
	name := spec.SecretsInput
	if src := s.open[name]; src != nil {
		f.Input = src
		return f, nil
	}
	if s.lock == nil {
		return nil, s.lockErr
	}
	in, err := s.lock.Input(name)
	if err != nil {
		return nil, err
	}
	src, err := OpenSecrets(ctx, s.r, in, s.clones[name])
	if err != nil {
		return nil, err
	}
	s.open[name] = src
	f.Input = src
	return f, nil
}

func (s *inputSources) close() {
	for _, src := range s.open {
		src.Close()
	}
}

// firstLine is the first line of an error message (its hint dropped),
// for a table cell.
func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}
