package provision

import (
	"io"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/charmbracelet/log"

	"github.com/fleetnix/fleet/agentfwd"
	"github.com/fleetnix/fleet/disko"
	"github.com/fleetnix/fleet/remote"
	"github.com/fleetnix/fleet/secrets"
)

// Where the flake is evaluated into the host's spec ([Options.EvalOn]).
const (
	EvalLocal     = "local"     // one nix eval on this machine (or the --host-spec file)
	EvalInstaller = "installer" // on the installer, with the secrets it fetched
)

// Who fetches the secrets input ([Options.SecretsFetch]).
const (
	FetchAuto      = "auto"      // the installer when it has git, else this machine (the default)
	FetchInstaller = "installer" // the installer, through the scoped forwarded agent
	FetchLocal     = "local"     // this machine, streamed to the installer
)

// Options are one install, as the operator asks for it. [Install] derives
// the rest from them: the host's spec, the flake's lock, the local
// decryption of every declared secret, the disk layout and the scoped
// agent the installer fetches the secrets through.
type Options struct {
	// Host names the host and where its spec comes from.
	Host HostSource
	// EvalOn is EvalLocal (default) or EvalInstaller (for operators
	// without Nix: preflight evaluates the flake on the installer).
	EvalOn string

	Target remote.Target
	Dial   remote.Options // how to connect (host-key policy for the installer)
	Root   string         // the new root on the installer (default /mnt)
	// Phases run, in pipeline order (nil: AllPhases); NoReboot drops
	// reboot and verify from them.
	Phases   []string
	NoReboot bool
	DryRun   bool
	Resume   bool
	Force    bool // install on a machine that is not a NixOS installer

	// VerifyUser is who fleet logs in as on the installed system, after
	// the reboot, with the operator's keys (default root: NixOS lets root
	// in with a key its configuration authorizes, in
	// users.users.root.openssh.authorizedKeys). The installer's login
	// password, when the installer login was another user (the ISO's
	// nixos), is not offered there.
	VerifyUser string

	// Identity is the local private key file installed as the host's
	// decryption identity at IdentityDest, one of the spec's identity
	// paths (default: an SSH key goes to the host key path of its own
	// type, an age identity to an identity path that is no host key's;
	// see placeIdentity). At a host key's path, the identity is also the
	// SSH host key.
	Identity     string
	IdentityDest string
	// IdentityAge names the host's escrowed identity instead of Identity:
	// a rules entry of the secrets repository (hosts/nas/host-key.age,
	// written by fleet keys escrow), read at the secrets input's locked
	// rev and decrypted in memory with OperatorIdentities (default
	// ~/.ssh/id_ed25519 and ~/.ssh/id_rsa, as fleet secrets has them;
	// OperatorPassphrase asks for a protected one's passphrase). Before
	// anything is dialed it must prove to be the host's: the recipient the
	// rules list for each of its secrets, decrypting each. It is installed
	// as Identity would be, and never touches a local disk.
	IdentityAge        string
	OperatorIdentities []string
	OperatorPassphrase secrets.PassphraseFunc

	// DiskOptions say how the spec's disko layout meets the machine.
	DiskOptions DiskOptions

	SecretsFetch string           // FetchAuto (default), FetchInstaller or FetchLocal
	Forward      agentfwd.Options // the agent the installer fetches through
	// NixOptions are nix settings for nixos-install, NAME=VALUE. They
	// reach it in NIX_CONFIG, never on a command line, and are redacted
	// from labels, logs and errors: they may hold tokens.
	NixOptions []string
	ExtraFiles string // a local tree copied onto the new root
	// Chown changes the ownership of extra files, recursively, after
	// they are copied (nixos-anywhere's --chown PATH OWNER).
	Chown []Chown
	// HardwareConfig, when set, writes the host's hardware configuration
	// to a local file in preflight (--generate-hardware-config).
	HardwareConfig HardwareConfig

	// OnPhase and OnStep, when set, follow the install: each phase's
	// state changes, and the steps inside long phases.
	OnPhase func(PhaseEvent)
	OnStep  func(Step)
	Log     *log.Logger
	Out     io.Writer // dry-run listing; nil: discard

	// Pieces Install derives when they are nil, given instead by tests
	// and library callers.
	Spec      *Spec             // the host's spec (then Host.Name is ignored)
	Decrypted map[string]string // secret name -> sha256 (hex) of its local decryption
	Disks     Disks             // the disk layout (a stand-in, in tests)

	// What tests narrow or speed up.
	ScanRoots   []string      // scan only these directories (default: every writable local filesystem)
	RebootWait  time.Duration // default 10 minutes
	LocalRunner remote.Runner // for local git and nix (default remote.Local)
}

// fill sets the defaults.
func (o *Options) fill() {
	if o.Root == "" {
		o.Root = "/mnt"
	}
	if o.EvalOn == "" {
		o.EvalOn = EvalLocal
	}
	if o.SecretsFetch == "" {
		o.SecretsFetch = FetchAuto
	}
	if o.Phases == nil {
		o.Phases = AllPhases
	}
	o.Phases = ExpandPhases(o.Phases)
	if o.NoReboot {
		o.Phases = slices.DeleteFunc(slices.Clone(o.Phases), func(p string) bool { return p == PhaseReboot || p == PhaseVerify })
	}
	if o.LocalRunner == nil {
		o.LocalRunner = &remote.Local{Log: o.Log}
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.VerifyUser == "" {
		o.VerifyUser = "root"
	}
	if o.RebootWait == 0 {
		o.RebootWait = 10 * time.Minute
	}
	if o.Log == nil {
		o.Log = log.New(io.Discard)
	}
}

// check refuses options that are wrong in themselves, before anything is
// read or dialed.
func (o *Options) check() error {
	if o.Identity == "" && o.IdentityAge == "" && !o.DryRun {
		return badOption("--host-identity is required: the key the host will decrypt its secrets with\nhint: fleet keys create --out nas.key makes one; add its public key to secrets.nix and rekey; to reinstall a host with its escrowed key, pass --host-identity-age hosts/HOST/host-key.age")
	}
	if o.Identity != "" && o.IdentityAge != "" {
		return badOption("--host-identity and --host-identity-age both name the host's identity: give one")
	}
	if o.IdentityAge != "" && (!filepath.IsLocal(o.IdentityAge) || strings.ContainsRune(o.IdentityAge, 0)) {
		return badOption("--host-identity-age %q: want the escrow's path in the secrets repository, like hosts/nas/host-key.age", o.IdentityAge)
	}
	if !slices.Contains([]string{FetchAuto, FetchInstaller, FetchLocal}, o.SecretsFetch) {
		return badOption("--secrets-fetch %q: want auto, installer or local", o.SecretsFetch)
	}
	if slices.Contains(o.Phases, "kexec") {
		return badOption("--phases kexec: fleet does not kexec; with fleet's own phases, boot the NixOS installer on the target first\nhint: nixos-anywhere's phases (kexec,disko,install,reboot) are read as nixos-anywhere reads them when the list has no others")
	}
	for _, p := range o.Phases {
		if !slices.Contains(AllPhases, p) {
			return badOption("unknown phase %q\nhint: phases are %s", p, strings.Join(AllPhases, ","))
		}
	}
	switch {
	case o.EvalOn != EvalLocal && o.EvalOn != EvalInstaller:
		return badOption("--eval-on %q: want local or installer", o.EvalOn)
	case !o.evalThere():
	case o.DryRun:
		return badOption("--dry-run cannot evaluate on the installer: that fetches the secrets there\nhint: evaluate locally (drop --eval-on), or pass --host-spec FILE")
	}
	if !userName.MatchString(o.VerifyUser) {
		return badOption("--verify-user %q: want a user name", o.VerifyUser)
	}
	if err := o.HardwareConfig.check(o.Host.FlakeDir, slices.Contains(o.Phases, PhaseStage)); err != nil {
		return err
	}
	if o.HardwareConfig.Backend != "" && !slices.Contains(o.Phases, PhasePreflight) {
		return badOption("--generate-hardware-config runs in the preflight phase\nhint: add preflight to --phases")
	}
	if !cleanAbs(o.Root) {
		return badOption("--root %q: want a clean absolute path on the installer", o.Root)
	}
	if m := o.DiskOptions.Mode; m != (disko.Mode{}) && (m.Validate() != nil || !m.Mount) {
		return badOption("disko mode %s: an install needs its root mounted\nhint: use --disko-mode disko, format or mount", m)
	}
	for _, c := range o.Chown {
		if err := c.check(o.ExtraFiles); err != nil {
			return err
		}
	}
	if o.IdentityDest != "" && (!cleanAbs(o.IdentityDest) || o.IdentityDest == "/") {
		return badOption("--identity-dest %q: want a clean absolute path on the host (no . or .. elements)", o.IdentityDest)
	}
	return nil
}

// userName is what --verify-user may be.
var userName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]{0,63}$`)

// evalThere: the spec is evaluated on the installer, in preflight.
func (o *Options) evalThere() bool {
	return o.Spec == nil && o.EvalOn == EvalInstaller && o.Host.SpecFile == ""
}

// Chown is one --chown: Path (on the new system, under the extra files)
// and everything below it get Owner (UID:GID, or names the installer
// resolves).
type Chown struct {
	Path, Owner string
}

// owner is a chown owner: a user or uid, and optionally :group or :gid.
var owner = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]*)?$`)

func (c Chown) check(extraFiles string) error {
	switch {
	case extraFiles == "":
		return badOption("--chown %s %s: there are no --extra-files to own", c.Path, c.Owner)
	case !owner.MatchString(c.Owner):
		return badOption("--chown %s %q: want UID:GID (or user:group)", c.Path, c.Owner)
	case !cleanAbs("/"+strings.TrimPrefix(c.Path, "/")) || strings.Trim(c.Path, "/") == "":
		return badOption("--chown %q: want a path on the new system, under the extra files (no . or .. elements)", c.Path)
	}
	return nil
}
