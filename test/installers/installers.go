// Package installers runs `fleet install` of the example's host on the
// rig's profiles of the installers people boot: the official NixOS
// minimal ISO ([ISO]: first contact as nixos, with the password set at
// its console and sudo; onto disks that hold an old install, which udev
// brings up at boot) and nixos-images' kexec installer ([Kexec]: root
// with keys, no git, no cryptsetup), and the rig's own installer on
// aarch64 ([Aarch64]: the example's nas as it is, the ARM NAS), and the
// kexec installer on aarch64 ([KexecAarch64]: the example's pi, a board
// whose firmware reads an MBR). [Proof] is the whole proof for one
// profile, the refusals first: the demo's scenarios (scripts/demo iso,
// kexec, arm) and the CI tests (cmd/fleet) run the same one.
package installers

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/fleetnix/fleet/test/homelab"
	"github.com/fleetnix/fleet/test/rig"
	"github.com/fleetnix/fleet/test/sshtest"
	"github.com/fleetnix/fleet/test/testenv"
)

// Host is the example host a profile installs unless it says another
// ([Profile.Installs]): the one place the tests and the demo name it (its
// layout: an ESP and a root on vda, vdb1 and vdc1 in an md raid1).
const Host = "nas"

// Pi is the example's MBR board: an msdos table on vda, a bootable FAT32
// firmware partition (MBR type 0x0c) and an ext4 root (0x83).
const Pi = "pi"

// Disks are the VM's disks: Host's layout uses the first three; vdd is
// outside it.
var Disks = []int64{2 << 30, 512 << 20, 512 << 20, 512 << 20}

// Profile is an installer people boot, as the rig reproduces it.
type Profile struct {
	Name string // rig.ProfileISO or rig.ProfileKexec
	// Password is the login user's password, set at the installer's
	// console; "" where the login is root with keys.
	Password string
	// OldInstall: the disks hold an old install when fleet comes.
	OldInstall bool
	// Arch is the installer's architecture (rig.ArchX86_64 when ""). The
	// example's Host is aarch64-linux; on an x86_64 installer it is
	// instantiated as x86_64-linux (homelab.Platform), which the proof says.
	Arch string
	// HardwareConfig: the install writes Host's hardware configuration
	// (--generate-hardware-config nixos-generate-config
	// hosts/HOST-hardware.nix, in the flake) and the proof checks it names
	// the VM's disk controllers and that the first boot's initrd check
	// passed with it.
	HardwareConfig bool
	// Installs is the example host the proof installs; Host when "".
	Installs string
}

// The profiles; Debian is the rig's own installer, for comparisons.
var (
	ISO    = Profile{Name: rig.ProfileISO, Password: "correct horse battery staple", OldInstall: true}
	Kexec  = Profile{Name: rig.ProfileKexec}
	Debian = Profile{Name: rig.ProfileDebian}
	// Aarch64 is the rig's installer on aarch64 (qemu's virt machine under
	// UEFI firmware): Host installed as the example declares it, with its
	// hardware configuration generated.
	Aarch64 = Profile{Name: rig.ProfileDebian, Arch: rig.ArchAarch64, HardwareConfig: true}
	// KexecAarch64 is the kexec installer on aarch64, the one
	// nixos-anywhere kexecs an ARM board into, installing Pi: its msdos
	// table's bytes are checked on the disk after the first boot.
	KexecAarch64 = Profile{Name: rig.ProfileKexec, Arch: rig.ArchAarch64, HardwareConfig: true, Installs: Pi}
	// ISOAarch64 is the NixOS ISO's profile on aarch64 (the official
	// aarch64 minimal ISO), with its old install: two boots of the
	// installer under emulation, so the CI runs it only with
	// FLEET_RIG_AARCH64=all.
	ISOAarch64 = Profile{Name: rig.ProfileISO, Password: ISO.Password, OldInstall: true, Arch: rig.ArchAarch64}
)

// Installed is the example host p's proof installs.
func (p Profile) Installed() string {
	if p.Installs != "" {
		return p.Installs
	}
	return Host
}

// Title names p in what the proof says: "kexec", "debian (aarch64)".
func (p Profile) Title() string {
	if p.Arch != "" && p.Arch != rig.ArchX86_64 {
		return p.Name + " (" + p.Arch + ")"
	}
	return p.Name
}

// System is the Nix system of p's installer: x86_64-linux, aarch64-linux.
func (p Profile) System() string { return homelab.RigSystem(p.Arch) }

// HardwareFile is where the install writes host's hardware
// configuration in fl's flake (see Profile.HardwareConfig).
func HardwareFile(fl *homelab.Fleet, host string) string {
	return filepath.Join(fl.Dir, "hosts", host+"-hardware.nix")
}

// BootOptions boot p's installer with disks: the login password set as a
// person sets it at the console.
func (p Profile) BootOptions(disks []int64) rig.Options {
	opts := rig.Options{Profile: p.Name, Arch: p.Arch, Disks: disks}
	if p.Password != "" {
		opts.Passwords = map[string]string{"nixos": p.Password}
	}
	return opts
}

// Args are `fleet install host`'s arguments for p's installer vm, dialed
// at target (USER@HOST:PORT): the operator's SSH key, which the example's
// hosts authorize for root, for the installed system (and, where the
// installer's root logs in with keys, the rig's), the login password from
// $SSHPASS where there is one (see Env).
func (p Profile) Args(fl *homelab.Fleet, vm *rig.VM, target, host string) []string {
	args := fl.InstallArgs(host, target, fl.Admin.Path, vm.Fingerprint())
	if vm.Image.RootKeys {
		args = append(args, "-i", vm.Identity)
	}
	if p.Password != "" {
		args = append(args, "--env-password")
	}
	if p.HardwareConfig {
		args = append(args, "--generate-hardware-config", "nixos-generate-config", HardwareFile(fl, host))
	}
	return args
}

// Env is what fleet's environment needs for p beyond the operator's
// agent and Nix: SSHPASS for a password login.
func (p Profile) Env() []string {
	if p.Password == "" {
		return nil
	}
	return []string{"SSHPASS=" + p.Password}
}

// Run is one profile's proof in progress: the example fleet, the
// installer VM, and how fleet runs.
type Run struct {
	T     testenv.TB
	P     Profile
	Fleet string // the fleet binary (a path, or a name on PATH)
	// Say tells what happens now; Log, when set, gets fleet's log (its
	// stderr) as it comes.
	Say func(format string, args ...any)
	Log io.Writer

	// Summary is fleet's stdout of the install: its tables.
	Summary string
	// InstallTime is how long `fleet install` of the host took, from
	// start to the first boot verified.
	InstallTime time.Duration

	fl    *homelab.Fleet
	vm    *rig.VM
	relay *sshtest.Relay
	env   []string
}

// Proof is the whole proof on r.P: the example fleet set up, the
// installer booted (and, for the ISO, an old install laid on its disks
// and the installer booted again, so udev assembles it), the refusals
// each checked by its exact error with the disks' bytes unchanged, then
// Host installed: every secret verified at first boot, no key bytes and
// no fleet files left on the installer, its authorized_keys unchanged,
// one SSH connection per boot.
func (r *Run) Proof(ctx context.Context) error {
	r.setUp()
	if err := r.boot(ctx); err != nil {
		return err
	}
	for _, c := range r.refusals(ctx) {
		if err := r.refused(ctx, c); err != nil {
			return err
		}
	}
	return r.install(ctx)
}

// setUp makes the example fleet and the operator's side: an ssh-agent
// with the deploy key and a personal key, a private nix store.
func (r *Run) setUp() {
	r.Say("set up the example fleet (examples/homelab): keys made now, secrets encrypted by its secrets.nix, served by a private git server on the loopback")
	host := r.P.Installed()
	r.fl = homelab.Setup(r.T, homelab.Platform(host, r.P.System()))
	for _, c := range r.fl.Changed {
		r.Say("the example's %s is an ARM machine; on this %s installer it is instantiated for the VM's architecture (the copy only): %s", host, r.P.System(), c)
	}
	r.env = r.fl.OperatorEnv(r.T)
}

// oldInstall (a shell command line, run by root's shell over the rig's
// control channel) lays an old install on the disks: an ESP, a root and a LUKS
// container on vda; vdb1 and vdc1 in an md raid1 holding an LVM volume
// group with an ext4 volume; and an array of vdc2 and vdd1, which spans a
// disk outside Host's layout.
const oldInstall = `set -e
sgdisk --clear -n1:0:+64M -t1:EF00 -n2:0:+1G -n3:0:0 /dev/vda >/dev/null
sgdisk --clear -n1:0:0 -t1:FD00 /dev/vdb >/dev/null
sgdisk --clear -n1:0:+400M -t1:FD00 -n2:0:0 -t2:FD00 /dev/vdc >/dev/null
sgdisk --clear -n1:0:0 -t1:FD00 /dev/vdd >/dev/null
udevadm settle
mkfs.vfat /dev/vda1 >/dev/null
mkfs.ext4 -q -L oldroot /dev/vda2
printf 'the old key' | cryptsetup -q luksFormat --pbkdf pbkdf2 --pbkdf-force-iterations 1000 /dev/vda3 --key-file=-
mdadm --create /dev/md/old --level=1 --raid-devices=2 --metadata=1.2 --assume-clean --run --homehost=any /dev/vdb1 /dev/vdc1
pvcreate -q /dev/md/old
vgcreate -q oldvg /dev/md/old
lvcreate -q -y -n home -l 100%FREE oldvg
mkfs.ext4 -q /dev/oldvg/home
mdadm --create /dev/md/span --level=1 --raid-devices=2 --metadata=1.2 --assume-clean --run --homehost=any /dev/vdc2 /dev/vdd1
sync`

// boot boots the profile's installer with Disks; for an old install it
// lays one on them and boots the installer again, as a person boots the
// stick once more: udev assembles the arrays and activates the volume
// group at boot.
func (r *Run) boot(ctx context.Context) error {
	r.Say("boot the rig's %s installer (qemu under software emulation) with 4 disks", r.P.Title())
	r.vm = rig.Boot(r.T, r.P.BootOptions(Disks))
	if r.P.OldInstall {
		r.Say("lay an old install on the disks (an md raid1 with an LVM volume group, a LUKS container, filesystems; an array that spans vdd), and boot the installer again")
		if out, err := r.vm.Run(ctx, oldInstall); err != nil {
			return fmt.Errorf("the old install: %w: %s", err, out)
		}
		if err := r.vm.BootInstaller(ctx); err != nil {
			return err
		}
		md, err := r.vm.Run(ctx, "cat", "/proc/mdstat")
		if err != nil {
			return err
		}
		lvs, err := r.vm.Run(ctx, "lvs", "--noheadings", "-o", "lv_attr", "oldvg/home")
		if err != nil || !strings.Contains(lvs, "a") || r.array("vdb1") == "" || r.array("vdd1") == "" {
			return fmt.Errorf("udev did not bring the old install up at boot (lvs: %q, %v):\n%s", lvs, err, md)
		}
		r.Say("udev assembled %s (vdb1, vdc1) with oldvg/home active, and %s (vdc2, vdd1)", r.array("vdb1"), r.array("vdd1"))
	}
	r.relay = sshtest.StartRelay(r.T, fmt.Sprintf("127.0.0.1:%d", r.vm.Port))
	return nil
}

// array is the running md array with member part ("md127"), "" if none.
func (r *Run) array(part string) string {
	out, err := r.vm.Run(context.Background(), "cat", "/proc/mdstat")
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(out, "\n") {
		if name, rest, ok := strings.Cut(l, " : active"); ok && strings.Contains(rest, " "+part+"[") {
			return name
		}
	}
	return ""
}

// target is who fleet logs in as on the installer, through the relay
// that counts connections.
func (r *Run) target() string { return r.vm.Image.Login + "@" + r.relay.Addr() }

// args are `fleet install host`'s arguments on this profile (see
// Profile.Args).
func (r *Run) args(host string) []string { return r.P.Args(r.fl, r.vm, r.target(), host) }

// refusal is an install that must be refused, by its exact error.
type refusal struct {
	what  string
	args  []string
	env   []string
	want  string       // the end of fleet's stderr, exactly
	after func() error // undoes what made it refused, for the next case
}

// refusals are the profile's: on the ISO a wrong password and a disk held
// by an array that spans a disk outside the layout; on the kexec
// installer a LUKS layout (vault), which needs cryptsetup; on aarch64 an
// x86_64 host (router), before its hardware configuration is written,
// first, then the profile's own whose hosts are not x86_64 only (not
// vault's).
func (r *Run) refusals(ctx context.Context) []refusal {
	addr := r.relay.Addr()
	var out []refusal
	if r.P.Arch == rig.ArchAarch64 {
		hw := HardwareFile(r.fl, "router")
		out = append(out, refusal{
			what: "an x86_64 host (router) on the aarch64 installer",
			args: r.args("router"),
			want: "error: preflight: " + sshHost(addr) + " is aarch64-linux but host router is built for x86_64-linux\n" +
				"hint: boot an installer of the host's architecture, or fix nixpkgs.hostPlatform\n" +
				"no changes made\n",
			after: func() error {
				if _, err := os.Stat(hw); !errors.Is(err, fs.ErrNotExist) {
					return fmt.Errorf("the refused install wrote %s (%v)", hw, err)
				}
				return nil
			},
		})
	}
	switch {
	case r.P.Name == rig.ProfileISO:
		span := r.array("vdd1")
		return append(out, refusal{
			what: "a wrong password",
			args: r.args(r.P.Installed()),
			env:  []string{"SSHPASS=not the password"},
			want: "error: preflight: ssh connection failed: password refused: nixos@" + addr + " refused the password from $SSHPASS\n" +
				"hint: check the password set on the host (on the NixOS installer: the one given to passwd at its console)\n" +
				"no changes made\n",
		}, refusal{
			what: "a disk held by an array that spans a disk outside the layout",
			args: r.args(r.P.Installed()),
			want: `error: preflight: disk "data2" (/dev/vdc): ` + span + " (raid1) is built on vdd1 too, which is on none of the layout's disks: disk in use: no changes made\n" +
				"hint: take it down yourself if you mean to break it up, or add that disk to the layout: destroy erases only the layout's disks\n",
			after: func() error {
				// The owner breaks the array up, as the hint says.
				_, err := r.vm.Run(ctx, "mdadm --stop /dev/"+span+" && wipefs -q -a /dev/vdd1")
				return err
			},
		})
	case r.P.Name == rig.ProfileKexec && r.P.Arch != rig.ArchAarch64:
		key := filepath.Join(r.T.TempDir(), "vault.luks")
		os.WriteFile(key, []byte("correct horse battery staple"), 0o600)
		return append(out, refusal{
			what: "a LUKS layout (vault) on an installer without cryptsetup",
			args: append(r.args("vault"), "--disk-key", "crypted="+key),
			want: "error: preflight: the installer lacks cryptsetup (from cryptsetup, for disk.main.content.partitions.luks.content): installer tool missing or too old: no changes made\n" +
				"hint: add those packages to the installer image\n",
		})
	}
	return out
}

// refused runs c: fleet must exit 1 with c.want as the end of its stderr
// (after the log), and no disk's bytes may change.
func (r *Run) refused(ctx context.Context, c refusal) error {
	r.Say("refused: %s", c.what)
	before, err := r.diskSums()
	if err != nil {
		return err
	}
	res := r.fleet(ctx, c.env, c.args...)
	if res.code != 1 || !strings.HasSuffix(res.stderr, "\n"+c.want) && res.stderr != c.want {
		return fmt.Errorf("%s: want exit 1 and the error\n%s\ngot %s", c.what, c.want, res)
	}
	after, err := r.diskSums()
	if err != nil {
		return err
	}
	if !slices.Equal(before, after) {
		return fmt.Errorf("%s: the disks changed", c.what)
	}
	if c.after != nil {
		return c.after()
	}
	return nil
}

// diskSums are the sha256 of each disk image, read on the host.
func (r *Run) diskSums() ([]string, error) {
	var sums []string
	for _, d := range r.vm.Disks {
		f, err := os.Open(d)
		if err != nil {
			return nil, err
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return nil, err
		}
		sums = append(sums, hex.EncodeToString(h.Sum(nil)))
	}
	return sums, nil
}

// install installs the profile's host and checks the outcome (see
// Proof); for Pi, also its disk's MBR, read from the disk image.
func (r *Run) install(ctx context.Context) error {
	host := r.P.Installed()
	keysBefore, err := r.vm.Run(ctx, authorizedKeys)
	if err != nil {
		return err
	}
	conns := r.relay.SSHConnections()
	rebooted := make(chan error, 1)
	go func() {
		if err := r.vm.Wait(ctx); err != nil {
			rebooted <- err
			return
		}
		rebooted <- r.vm.Reboot(ctx, r.fl.HostPublicKey(host))
	}()
	r.Say("fleet install %s --target %s ...", host, r.target())
	start := time.Now()
	res := r.fleet(ctx, nil, r.args(host)...)
	r.InstallTime = time.Since(start)
	r.Summary = res.stdout
	if res.code != 0 {
		return fmt.Errorf("fleet install: %s", res)
	}
	if err := <-rebooted; err != nil {
		return fmt.Errorf("boot the installed machine: %w", err)
	}
	var problems []string
	problems = append(problems, Verified(res.stdout, host)...)
	if n := r.relay.SSHConnections() - conns; n != 2 {
		problems = append(problems, fmt.Sprintf("the installer's and the installed system's sshd answered %d connections, want 2 (one per boot)", n))
	}
	fetch := "forwarded agent: the installer used key " + r.fl.Deploy.Fingerprint() + " 1 time while fetching the secrets"
	if r.P.Name == rig.ProfileKexec {
		fetch = "secrets input: fetched on this machine and streamed to the installer: the installer has no git; no agent was forwarded"
		if strings.Contains(res.stdout, "forwarded agent:") {
			problems = append(problems, "an agent was forwarded to an installer without git")
		}
	}
	for _, want := range []string{fetch, "installed system reached as: root@" + r.relay.Addr()} {
		if !strings.Contains(res.stdout, want) {
			problems = append(problems, "the summary lacks "+want)
		}
	}
	if r.P.HardwareConfig {
		p, err := r.hardwareConfig(ctx, res.stdout)
		if err != nil {
			return err
		}
		problems = append(problems, p...)
	}
	if host == Pi {
		r.Say("read %s's MBR from its disk image: an msdos table, the bootable FAT32 firmware partition (0x0c), the ext4 root (0x83)", host)
		p, err := piDisk(ctx, r.vm.Disks[0])
		if err != nil {
			return err
		}
		problems = append(problems, p...)
	}
	r.Say("scan the installer's writable layers from the host: key bytes, fleet's files, authorized_keys")
	left, err := r.leftovers(ctx, keysBefore)
	if err != nil {
		return err
	}
	problems = append(problems, left...)
	if len(problems) > 0 {
		return fmt.Errorf("the install of %s on the %s installer:\n  %s\nfleet's output:\n%s", host, r.P.Title(), strings.Join(problems, "\n  "), res)
	}
	return nil
}

// authorizedKeys (a shell command line for the rig's control channel)
// prints the sha256 of every authorized_keys file root and nixos have.
const authorizedKeys = `for f in /root/.ssh/authorized_keys /root/.ssh/authorized_keys2 /home/nixos/.ssh/authorized_keys /etc/ssh/authorized_keys.d/*; do
  [ -f "$f" ] && sha256sum "$f"
done; true`

// authorizedKeysFile: p is one of the files authorizedKeys hashes (sshd's
// for root and nixos; not the rig's control channel's own).
func authorizedKeysFile(p string) bool {
	switch p {
	case "/root/.ssh/authorized_keys", "/root/.ssh/authorized_keys2", "/home/nixos/.ssh/authorized_keys":
		return true
	}
	return strings.HasPrefix(p, "/etc/ssh/authorized_keys.d/")
}

// Verified checks fleet's first-boot table: an ok row for every secret
// host declares, and no other.
func Verified(out, host string) []string {
	var problems []string
	declared := homelab.Declared[host]
	for name, path := range declared {
		row := `(?m)^` + regexp.QuoteMeta(name) + ` +` + regexp.QuoteMeta(path) + ` +04[04]0 +root +root +ramfs +match +ok$`
		if !regexp.MustCompile(row).MatchString(out) {
			problems = append(problems, fmt.Sprintf("no ok row for %s at %s in the first-boot table", name, path))
		}
	}
	if n := len(regexp.MustCompile(`(?m)^[a-z-]+ +/\S+ +04[04]0 `).FindAllString(out, -1)); n != len(declared) {
		problems = append(problems, fmt.Sprintf("the first-boot table has %d secret rows, %s declares %d", n, host, len(declared)))
	}
	return problems
}

// leftovers looks at every writable layer the installer had (its overlay
// images, from the host): the bytes of any key the example made; any
// file or directory fleet leaves (named fleet, an upload's temp file, a
// forwarded agent's socket directory: /tmp/ssh-*, ~/.ssh/agent); and
// authorized_keys files that differ from before the install.
func (r *Run) leftovers(ctx context.Context, keysBefore string) ([]string, error) {
	keys, err := r.fl.PrivateKeys()
	if err != nil {
		return nil, err
	}
	var problems []string
	found, err := r.vm.Scan(ctx, keys...)
	if err != nil {
		return nil, err
	}
	for _, f := range found {
		problems = append(problems, "key material on the installer media: "+f.String())
	}
	before := map[string]string{}
	for _, l := range strings.Split(keysBefore, "\n") {
		if sum, file, ok := strings.Cut(l, "  "); ok {
			before[file] = sum
		}
	}
	for _, img := range append(slices.Clone(r.vm.PastOverlays), r.vm.Overlay) {
		err := rig.WalkImage(ctx, img, func(rel, full string, d fs.DirEntry) error {
			p, ok := strings.CutPrefix(rel, "upper/")
			if !ok {
				return nil
			}
			p = "/" + p
			base := filepath.Base(p)
			switch {
			case strings.Contains(strings.ToLower(base), "fleet"), strings.HasPrefix(p, "/tmp/ssh-"), strings.HasSuffix(p, "/.ssh/agent"):
				problems = append(problems, "fleet left "+p+" on the installer")
			case d.Type().IsRegular() && authorizedKeysFile(p):
				b, err := os.ReadFile(full)
				if err != nil {
					return err
				}
				sum := sha256.Sum256(b)
				if was, ok := before[p]; !ok || was != hex.EncodeToString(sum[:]) {
					problems = append(problems, p+" changed on the installer")
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return problems, nil
}

// result is one finished fleet process.
type result struct {
	code           int
	stdout, stderr string
}

func (res result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
}

// fleet runs fleet with args, the run's environment and env (which, for a
// profile with a password, has SSHPASS unless env sets it).
func (r *Run) fleet(ctx context.Context, env []string, args ...string) result {
	cmd := exec.CommandContext(ctx, r.Fleet, args...)
	cmd.Env = append(append(slices.Clone(r.env), r.P.Env()...), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if r.Log != nil {
		cmd.Stderr = io.MultiWriter(&stderr, r.Log)
	}
	err := cmd.Run()
	res := result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	case err != nil:
		res.code, res.stderr = -1, err.Error()
	}
	return res
}

// sshHost is how fleet names the machine at addr (HOST:PORT) in its
// errors: [HOST]:PORT, as known_hosts does for a port other than 22.
func sshHost(addr string) string {
	h, p, _ := strings.Cut(addr, ":")
	return "[" + h + "]:" + p
}
