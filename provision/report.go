package provision

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/fleetnix/fleet/remote"
)

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
	SecretsDir string          `json:"secrets_dir"` // age.secretsDir
	AgenixLink string          `json:"agenix_link"` // what the secrets dir points at: the current generation
	Secrets    []SecretCheck   `json:"secrets"`
	Identities []IdentityCheck `json:"identities"`
	OK         bool            `json:"ok"`
}

// verifyScript prints, for each path, tagged lines: its mode and owners,
// and for secrets the path it resolves to, its filesystem's type and its
// sha256 (computed there: the plaintext never leaves the host). One
// process per fact and none for assembling lines: on a small host every
// fork counts, and a fleet is checked many hosts at a time.
const verifyScript = `dir=$1 mnt=$2; shift 2
printf 'L\t'; readlink -- "$dir" 2>/dev/null || echo
printf 'G\t'; readlink -f -- "$dir" 2>/dev/null || echo
printf 'M\t'; readlink -f -- "$mnt" 2>/dev/null || echo
k=S
for p in "$@"; do
  if [ "$p" = "--identities" ]; then k=I; continue; fi
  if [ ! -e "$p" ]; then printf '%s\t%s\tmissing\n' "$k" "$p"; continue; fi
  printf '%s\t%s\tstat\t' "$k" "$p"; stat -L -c '%a	%U	%u	%G	%g' -- "$p" || echo
  if [ "$k" = I ]; then continue; fi
  printf 'S\t%s\tresolved\t' "$p"; readlink -f -- "$p" || echo
  printf 'S\t%s\tfs\t' "$p"; stat -f -L -c %T -- "$p" || echo
  printf 'S\t%s\tsha256\t' "$p"; sha256sum < "$p" || echo
done
`

// hostFile is what verifyScript said of one path.
type hostFile struct {
	found                       bool
	mode, user, uid, group, gid string
	resolved, fsType, sha256    string
}

// parseVerify reads verifyScript's output: the secrets dir's link, the
// resolved secrets dir and mount point, and each path's facts by kind (S
// for secrets, I for identities).
func parseVerify(out []byte, rep *Report, loc *agenixLayout) map[string]map[string]*hostFile {
	files := map[string]map[string]*hostFile{"S": {}, "I": {}}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		// What the host printed is shown and logged: escaped first.
		f := strings.Split(remote.Escape(sc.Text()), "\t")
		switch {
		case len(f) < 2:
		case f[0] == "L":
			rep.AgenixLink = f[1]
		case f[0] == "G":
			loc.gen = f[1]
		case f[0] == "M":
			loc.mntReal = f[1]
		case (f[0] == "S" || f[0] == "I") && len(f) >= 3:
			hf := files[f[0]][f[1]]
			if hf == nil {
				hf = &hostFile{}
				files[f[0]][f[1]] = hf
			}
			switch v := f[3:]; {
			case f[2] == "stat" && len(v) == 5:
				hf.found = true
				hf.mode, hf.user, hf.uid, hf.group, hf.gid = v[0], v[1], v[2], v[3], v[4]
			case f[2] == "resolved" && len(v) == 1:
				hf.resolved = v[0]
			case f[2] == "fs" && len(v) == 1:
				hf.fsType = v[0]
			case f[2] == "sha256" && len(v) == 1:
				hf.sha256, _, _ = strings.Cut(v[0], " ")
			}
		}
	}
	return files
}

// Verify checks, on the booted host r, every secret the spec declares,
// where agenix's module puts it (age.secretsDir, age.secretsMountPoint,
// and each secret's name, path and symlink): it exists; a symlinked one
// (the default) resolves to its name in the current generation, the one
// the secrets dir links to, on ramfs or tmpfs under the mount point; it
// has the declared mode, owner and group; and its sha256 equals
// want[name] (the sha256 hex of the local decryption). It also checks the
// identity files are 0600 and owned by root.
func Verify(ctx context.Context, r remote.Runner, spec *Spec, want map[string]string) (*Report, error) {
	names := spec.SecretNames()
	dir, mnt := orDefault(spec.SecretsDir, DefaultSecretsDir), orDefault(spec.SecretsMountPoint, DefaultSecretsMountPoint)
	args := []string{"sh", "-c", verifyScript, "fleet-verify", dir, mnt}
	for _, n := range names {
		args = append(args, spec.Secrets[n].Path)
	}
	args = append(args, "--identities")
	args = append(args, spec.IdentityPaths...)
	res, err := r.Run(ctx, remote.Cmd{Args: args, Label: "verify secrets"})
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	rep := &Report{Host: r.Host(), SecretsDir: dir, Secrets: []SecretCheck{}, Identities: []IdentityCheck{}, OK: true}
	loc := agenixLayout{dir: dir, mnt: mnt}
	files := parseVerify(res.Stdout, rep, &loc)
	for _, n := range names {
		c := loc.checkSecret(n, spec.Secrets[n], files["S"][spec.Secrets[n].Path], want)
		rep.OK = rep.OK && c.OK
		rep.Secrets = append(rep.Secrets, c)
	}
	anyIdentity := false
	for _, p := range spec.IdentityPaths {
		ic := IdentityCheck{Path: p, Problems: []string{}}
		if f := files["I"][p]; f != nil && f.found {
			ic.Exists, anyIdentity = true, true
			ic.Mode, ic.Owner = "0"+f.mode, f.user
			if ic.Mode != "0600" && ic.Mode != "0400" {
				ic.Problems = append(ic.Problems, "mode "+ic.Mode+", want 0600")
			}
			if f.uid != "0" {
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

// agenixLayout is where agenix put the secrets on the host: the secrets
// dir and mount point as declared, and as the host resolved them.
type agenixLayout struct {
	dir, mnt     string // age.secretsDir, age.secretsMountPoint
	gen, mntReal string // the secrets dir and the mount point, symlinks resolved on the host
}

func (l agenixLayout) checkSecret(name string, s Secret, f *hostFile, want map[string]string) SecretCheck {
	c := SecretCheck{Name: name, Path: s.Path, Content: "missing", Problems: []string{}}
	bad := func(format string, args ...any) { c.Problems = append(c.Problems, fmt.Sprintf(format, args...)) }
	if f == nil || !f.found {
		bad("missing")
		return c
	}
	c.Resolved, c.FSType = f.resolved, f.fsType
	c.Mode, c.Owner, c.Group = "0"+f.mode, f.user, f.group
	// A symlinked secret (agenix's default) lives in the generation the
	// secrets dir links to, under its name; one that is not is written
	// at its path, which is on the ramfs only when it is in the secrets dir.
	symlinked := s.Symlink == nil || *s.Symlink
	mnt := orDefault(l.mntReal, l.mnt)
	switch {
	case symlinked && !strings.HasPrefix(c.Resolved, mnt+"/"):
		bad("resolves to %s, outside %s/", c.Resolved, l.mnt)
	case symlinked && l.gen != "" && c.Resolved != l.gen+"/"+s.Name:
		bad("resolves to %s, not %s/%s in the current generation (%s -> %s)", c.Resolved, l.gen, s.Name, l.dir, l.gen)
	}
	if symlinked || strings.HasPrefix(s.Path, l.dir+"/") {
		if c.FSType != "ramfs" && c.FSType != "tmpfs" {
			bad("on %s, not ramfs or tmpfs: the plaintext is on disk", c.FSType)
		}
	}
	if wm, err := strconv.ParseUint(s.Mode, 8, 32); err == nil {
		if gm, err := strconv.ParseUint(f.mode, 8, 32); err != nil || gm != wm {
			bad("mode %s, want %04o", c.Mode, wm)
		}
	}
	if !sameID(s.Owner, f.user, f.uid) {
		bad("owner %s, want %s", c.Owner, s.Owner)
	}
	if !sameID(s.Group, f.group, f.gid) {
		bad("group %s, want %s", c.Group, s.Group)
	}
	switch w, ok := want[name]; {
	case !ok:
		c.Content = "unchecked"
	case w == f.sha256:
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
