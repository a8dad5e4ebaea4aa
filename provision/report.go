package provision

import (
	"bufio"
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/fleetnix/fleet/remote"
)

// agenixDir is where agenix's generations live on the installed host.
const agenixDir = "/run/agenix.d/"

// SecretCheck is the first-boot state of one declared secret.
type SecretCheck struct {
	Name     string   `json:"name"`
	Path     string   `json:"path"`
	Resolved string   `json:"resolved"`
	FSType   string   `json:"fs_type"`
	Mode     string   `json:"mode"`
	Owner    string   `json:"owner"`
	Group    string   `json:"group"`
	Content  string   `json:"content"` // "match", "differs", "unchecked", "missing"
	OK       bool     `json:"ok"`
	Problems []string `json:"problems"`
}

// IdentityCheck is the state of one decryption identity on the host.
type IdentityCheck struct {
	Path     string   `json:"path"`
	Exists   bool     `json:"exists"`
	Mode     string   `json:"mode"`
	Owner    string   `json:"owner"`
	OK       bool     `json:"ok"`
	Problems []string `json:"problems"`
}

// Report is the result of Verify.
type Report struct {
	Host       string          `json:"host"`
	AgenixLink string          `json:"agenix_link"` // what /run/agenix points at
	Secrets    []SecretCheck   `json:"secrets"`
	Identities []IdentityCheck `json:"identities"`
	OK         bool            `json:"ok"`
}

// verifyScript prints one line per path: for secrets their resolved path,
// filesystem type, mode, owners and sha256 (computed there: the plaintext
// never leaves the host), for identities their mode and owner.
const verifyScript = `echo "L	$(readlink /run/agenix 2>/dev/null)"
mode=S
for p in "$@"; do
  if [ "$p" = "--identities" ]; then mode=I; continue; fi
  if [ ! -e "$p" ]; then printf '%s\t%s\tmissing\n' "$mode" "$p"; continue; fi
  st=$(stat -L -c '%a	%U	%u	%G	%g' -- "$p")
  if [ "$mode" = I ]; then printf 'I\t%s\tok\t%s\n' "$p" "$st"; continue; fi
  r=$(readlink -f -- "$p")
  fst=$(stat -f -c %T -- "$(dirname -- "$r")")
  sum=$(sha256sum < "$p"); sum=${sum%% *}
  printf 'S\t%s\tok\t%s\t%s\t%s\t%s\n' "$p" "$r" "$fst" "$st" "$sum"
done
`

// Verify checks, on the booted host r, every secret the spec declares:
// it exists, resolves into /run/agenix.d on ramfs or tmpfs (for agenix's
// symlinked secrets), has the declared mode, owner and group, and its
// sha256 equals want[name] (the sha256 hex of the local decryption). It
// also checks the identity files are 0600 and owned by root.
func Verify(ctx context.Context, r remote.Runner, spec *Spec, want map[string]string) (*Report, error) {
	names := spec.SecretNames()
	args := []string{"sh", "-c", verifyScript, "fleet-verify"}
	for _, n := range names {
		args = append(args, spec.Secrets[n].Path)
	}
	args = append(args, "--identities")
	args = append(args, spec.IdentityPaths...)
	res, err := r.Run(ctx, remote.Cmd{Args: args, Label: "verify secrets"})
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	rep := &Report{Host: r.Host(), Secrets: []SecretCheck{}, Identities: []IdentityCheck{}, OK: true}
	secrets := map[string][]string{}
	idents := map[string][]string{}
	sc := bufio.NewScanner(strings.NewReader(string(res.Stdout)))
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		switch {
		case f[0] == "L" && len(f) > 1:
			rep.AgenixLink = f[1]
		case f[0] == "S" && len(f) >= 3:
			secrets[f[1]] = f
		case f[0] == "I" && len(f) >= 3:
			idents[f[1]] = f
		}
	}
	for _, n := range names {
		c := checkSecret(n, spec.Secrets[n], secrets[spec.Secrets[n].Path], want)
		rep.OK = rep.OK && c.OK
		rep.Secrets = append(rep.Secrets, c)
	}
	anyIdentity := false
	for _, p := range spec.IdentityPaths {
		ic := IdentityCheck{Path: p, Problems: []string{}}
		f := idents[p]
		if len(f) >= 8 && f[2] == "ok" {
			ic.Exists, anyIdentity = true, true
			ic.Mode, ic.Owner = "0"+f[3], f[4]
			if ic.Mode != "0600" && ic.Mode != "0400" {
				ic.Problems = append(ic.Problems, "mode "+ic.Mode+", want 0600")
			}
			if f[5] != "0" {
				ic.Problems = append(ic.Problems, "owned by "+ic.Owner+", want root")
			}
		}
		ic.OK = len(ic.Problems) == 0
		rep.OK = rep.OK && ic.OK
		rep.Identities = append(rep.Identities, ic)
	}
	if !anyIdentity && len(spec.IdentityPaths) > 0 {
		rep.OK = false
		for i := range rep.Identities {
			rep.Identities[i].OK = false
			rep.Identities[i].Problems = append(rep.Identities[i].Problems, "missing, and no other identity exists: nothing can decrypt")
		}
	}
	return rep, nil
}

func checkSecret(name string, s Secret, f []string, want map[string]string) SecretCheck {
	c := SecretCheck{Name: name, Path: s.Path, Content: "missing", Problems: []string{}}
	bad := func(format string, args ...any) { c.Problems = append(c.Problems, fmt.Sprintf(format, args...)) }
	if len(f) < 11 || f[2] != "ok" {
		bad("missing")
		return c
	}
	c.Resolved, c.FSType = f[3], f[4]
	c.Mode, c.Owner, c.Group = "0"+f[5], f[6], f[8]
	onRamfs := *s.Symlink || strings.HasPrefix(s.Path, "/run/agenix/")
	if onRamfs {
		if !strings.HasPrefix(c.Resolved, agenixDir) {
			bad("resolves to %s, outside %s", c.Resolved, agenixDir)
		}
		if c.FSType != "ramfs" && c.FSType != "tmpfs" {
			bad("on %s, not ramfs or tmpfs: the plaintext is on disk", c.FSType)
		}
	}
	if wm, err := strconv.ParseUint(s.Mode, 8, 32); err == nil {
		if gm, err := strconv.ParseUint(f[5], 8, 32); err != nil || gm != wm {
			bad("mode %s, want %04o", c.Mode, wm)
		}
	}
	if !sameID(s.Owner, f[6], f[7]) {
		bad("owner %s, want %s", c.Owner, s.Owner)
	}
	if !sameID(s.Group, f[8], f[9]) {
		bad("group %s, want %s", c.Group, s.Group)
	}
	switch w, ok := want[name]; {
	case !ok:
		c.Content = "unchecked"
	case w == f[10]:
		c.Content = "match"
	default:
		c.Content = "differs"
		bad("content differs from the local decryption (sha256)")
	}
	c.OK = len(c.Problems) == 0
	return c
}

// sameID compares a declared owner or group (a name or a number) with the
// name and number stat reported.
func sameID(declared, name, id string) bool {
	return declared == name || declared == id
}
