package rig_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/fleetnix/fleet/test/rig"
	"github.com/fleetnix/fleet/test/sshtest"
)

// TestInstaller boots the default profile's live installer and walks the
// whole rig: pinned host key, live-media overlay, the private git server
// through a forwarded agent, a disk installed by hand that boots as the
// installed machine with its own host key, the installer booted again
// over that disk (a reinstall's reused disks), a clean scan of the
// overlays, and a disk replaced by a blank one. Three VM boots in all.
func TestInstaller(t *testing.T) {
	rig.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	vm := rig.Boot(t, rig.Options{Disks: []int64{2 << 30}})

	t.Run("pinned host key", func(t *testing.T) {
		got, _, _, _, err := ssh.ParseAuthorizedKey([]byte(vm.MustRun(t, "cat /etc/ssh/ssh_host_ed25519_key.pub")))
		if err != nil || !bytes.Equal(got.Marshal(), vm.Image.HostKey.Marshal()) {
			t.Fatalf("installer host key is not the built one %s: %v", vm.Fingerprint(), err)
		}
		// root logs in to the installer's own sshd with the operator key.
		if out, err := exec.CommandContext(ctx, "ssh", append(vm.LoginArgs("root"), "--", "id", "-un")...).CombinedOutput(); err != nil || string(out) != "root\n" {
			t.Fatalf("root login with the operator key: %v: %s", err, out)
		}
		// Another key pinned under the same address: ssh refuses.
		other := sshtest.NewKey(t, "ed25519", "", "impostor")
		kh := filepath.Join(t.TempDir(), "known_hosts")
		if err := os.WriteFile(kh, []byte("[127.0.0.1]:"+itoa(vm.Port)+" "+other.Line+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		args := append(vm.LoginArgs("root", "-o", "UserKnownHostsFile="+kh), "--", "true")
		out, err := exec.CommandContext(ctx, "ssh", args...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "Host key verification failed") {
			t.Fatalf("ssh with a wrong pinned key: err=%v out=%s", err, out)
		}
	})

	t.Run("live media", func(t *testing.T) {
		out := vm.MustRun(t, "findmnt -n -o FSTYPE /; lsblk -dn -o NAME,SIZE,RO /dev/vda; nix-instantiate --eval -E '6 * 7'; age --version; uname -m")
		if !strings.HasPrefix(out, "overlay\n") || !strings.Contains(out, "vda    2G  0") || !strings.Contains(out, "\n42\n") || !strings.HasSuffix(out, "\nx86_64\n") {
			t.Fatalf("want an overlay root, a 2G writable /dev/vda, a working Nix on x86_64, got:\n%s", out)
		}
	})

	t.Run("git server through a forwarded agent", func(t *testing.T) {
		deploy := sshtest.NewKey(t, "ed25519", "", "deploy")
		git := rig.StartGitServer(t, deploy.Line)
		rev := git.AddRepo(t, "secrets", map[string]string{"secrets.nix": "{ }\n"})
		vm.MustRun(t, "mkdir -p /root/.ssh && echo '"+git.GuestKnownHostsLine()+"' >> /root/.ssh/known_hosts")
		clone := "git clone -q " + git.GuestURL("secrets") + " /root/secrets-%s && git -C /root/secrets-%s rev-parse HEAD"

		// Without an agent: refused.
		out, err := vm.Run(ctx, strings.ReplaceAll(clone, "%s", "a"))
		if err == nil || !strings.Contains(err.Error(), "Permission denied (publickey)") {
			t.Fatalf("clone without agent: want Permission denied (publickey), got %v %s", err, out)
		}
		// With an agent holding the deploy key, forwarded through the
		// installer's own sshd: cloned.
		agent := sshtest.StartAgent(t, deploy)
		cmd := exec.CommandContext(ctx, "ssh", append(vm.LoginArgs("root", "-A"), "--", strings.ReplaceAll(clone, "%s", "b"))...)
		cmd.Env = append(os.Environ(), agent.Env())
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		got, err := cmd.Output()
		if err != nil {
			t.Fatalf("clone with a forwarded agent: %v: %s", err, stderr.String())
		}
		if strings.TrimSpace(string(got)) != rev {
			t.Fatalf("cloned HEAD %q, want %q", got, rev)
		}
		// No private key reached the VM.
		if out := vm.MustRun(t, "grep -rlE 'PRIVATE KEY' /root /tmp /home 2>/dev/null || true"); out != "" {
			t.Fatalf("private key material in the VM: %s", out)
		}
	})

	var marker []byte
	t.Run("install by hand and reboot", func(t *testing.T) {
		marker = []byte("rig-marker-" + itoa(int(time.Now().UnixNano())))
		pub := installByHand(t, vm, marker)
		if err := vm.Reboot(ctx, pub); err != nil {
			t.Fatal(err)
		}
		out := vm.MustRun(t, "hostname; cat /etc/ssh/ssh_host_ed25519_key.pub; findmnt -n -o SOURCE,FSTYPE /")
		if !strings.HasPrefix(out, "nas\n") || !strings.Contains(out, "installed") || !strings.Contains(out, "/dev/vda1 ext4") {
			t.Fatalf("not the installed machine:\n%s", out)
		}
		if vm.Fingerprint() == ssh.FingerprintSHA256(vm.Image.HostKey) {
			t.Fatal("installed machine pinned to the installer's key")
		}
	})

	t.Run("installer again over the installed disk", func(t *testing.T) {
		if err := vm.BootInstaller(ctx); err != nil {
			t.Fatal(err)
		}
		out := vm.MustRun(t, "findmnt -n -o FSTYPE /; blkid -o value -s LABEL /dev/vda1; test -e /root/secrets-b && echo kept || echo fresh")
		if out != "overlay\nnixos\nfresh\n" {
			t.Fatalf("want the live installer (a fresh writable layer) over the installed disk, got:\n%s", out)
		}
		if vm.Fingerprint() != ssh.FingerprintSHA256(vm.Image.HostKey) {
			t.Fatal("the installer is not pinned to its own key")
		}
	})

	t.Run("scan of a clean run", func(t *testing.T) {
		if marker == nil {
			t.Skip("no run to scan")
		}
		op, err := os.ReadFile(vm.Identity)
		if err != nil {
			t.Fatal(err)
		}
		found, err := vm.Scan(ctx, marker, op)
		if err != nil {
			t.Fatal(err)
		}
		// The marker written inside the VM proves its writes reach the
		// scanned image; nothing else may match.
		if len(found) != 1 || found[0].Path != "upper/root/rig-marker" {
			t.Fatalf("scan of a clean run: want only the marker at upper/root/rig-marker, got %v", found)
		}
	})

	t.Run("snapshot", func(t *testing.T) {
		if os.Getenv("FLEET_RIG_SNAPSHOT") == "off" {
			t.Skip("FLEET_RIG_SNAPSHOT=off")
		}
		// A second VM of the same shape restores the snapshot the first
		// boot saved (or a run before this one did): a live installer of
		// its own, with the host's time and blank disks.
		again := rig.Boot(t, rig.Options{Disks: []int64{2 << 30}})
		if !again.Restored {
			t.Fatal("the second VM of this shape did not restore the snapshot")
		}
		out, err := again.Run(ctx, "date +%s; findmnt -n -o FSTYPE /; blkid /dev/vda || echo blank")
		if err != nil {
			t.Fatal(err)
		}
		var guest int64
		fmt.Sscan(out, &guest)
		if d := time.Now().Unix() - guest; d < -5 || d > 30 || !strings.HasSuffix(out, "\noverlay\nblank\n") {
			t.Errorf("restored VM: clock %d s behind, want its own overlay and a blank disk: %s", d, out)
		}
		again.Stop()
	})

	t.Run("replace a disk", func(t *testing.T) {
		vm.Shutdown(ctx)
		if err := vm.ReplaceDisk(0); err != nil {
			t.Fatal(err)
		}
		if !blank(t, vm.Disks[0]) {
			t.Fatal("the replaced disk is not blank")
		}
		if fi, err := os.Stat(vm.Disks[0]); err != nil || fi.Size() != 2<<30 {
			t.Fatalf("the new disk: %v, size %d, want 2 GiB", err, fi.Size())
		}
	})
}

// installByHand lays a copy of the live system onto /dev/vda1 (label
// nixos) with a host key of its own and the marker left behind in the
// live system only; it returns the installed host key.
func installByHand(t *testing.T, vm *rig.VM, marker []byte) ssh.PublicKey {
	t.Helper()
	start := time.Now()
	vm.MustRun(t, `set -e
printf '%s' '`+string(marker)+`' > /root/rig-marker
sgdisk -Z /dev/vda >/dev/null 2>&1 || true
sgdisk -n1:0:0 -t1:8300 -c1:root /dev/vda >/dev/null
udevadm settle
mkfs.ext4 -q -F -L nixos /dev/vda1
mount /dev/vda1 /mnt
cp -a --one-file-system /. /mnt/ && rm /mnt/root/rig-marker
rm -f /mnt/etc/ssh/ssh_host_*
ssh-keygen -q -t ed25519 -N '' -C installed -f /mnt/etc/ssh/ssh_host_ed25519_key
echo nas > /mnt/etc/hostname
umount /mnt
sync`)
	t.Logf("installed by hand in %s", time.Since(start).Round(100*time.Millisecond))
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(vm.MustRun(t, "mount /dev/vda1 /mnt && cat /mnt/etc/ssh/ssh_host_ed25519_key.pub && umount /mnt")))
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// blank reports whether the file is all zeros.
func blank(t *testing.T, p string) bool {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf, zero := make([]byte, 1<<20), make([]byte, 1<<20)
	for {
		n, err := f.Read(buf)
		if !bytes.Equal(buf[:n], zero[:n]) {
			return false
		}
		if err != nil {
			return true
		}
	}
}

// TestScanFindsPlantedKeys plants key material in an ext4 image made like
// the overlay and checks the scan reports each file, by pattern.
func TestScanFindsPlantedKeys(t *testing.T) {
	rig.Require(t)
	key := sshtest.NewKey(t, "ed25519", "", "planted")
	priv, err := os.ReadFile(key.Path)
	if err != nil {
		t.Fatal(err)
	}
	// The exact bytes, without their PEM armor, hidden in another file.
	body := strings.Split(strings.TrimSpace(string(priv)), "\n")[2]
	seed := t.TempDir()
	files := map[string]string{
		"upper/root/.ssh/id_ed25519": string(priv),
		"upper/etc/age.key":          "# created: now\nAGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ\n",
		"upper/tmp/blob":             "junk " + body + " junk",
		"upper/etc/hostname":         "installer\n",
	}
	for p, c := range files {
		os.MkdirAll(filepath.Join(seed, filepath.Dir(p)), 0o700)
		if err := os.WriteFile(filepath.Join(seed, p), []byte(c), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	img := filepath.Join(t.TempDir(), "overlay.img")
	if out, err := exec.Command("sh", "-c", "truncate -s 64M "+img+" && mkfs.ext4 -q -d "+seed+" "+img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs: %v: %s", err, out)
	}
	found, err := rig.ScanImage(context.Background(), img, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, f := range found {
		got[f.String()] = true
	}
	want := []string{
		`upper/root/.ssh/id_ed25519: "PRIVATE KEY"`,
		`upper/root/.ssh/id_ed25519: secret #1 (exact bytes)`,
		`upper/etc/age.key: "AGE-SECRET-KEY-1"`,
		`upper/tmp/blob: secret #1 (exact bytes)`,
	}
	for _, w := range want {
		if !got[w] {
			t.Errorf("missing finding %s; got %v", w, found)
		}
	}
	if len(found) != len(want) {
		t.Errorf("got %d findings, want %d: %v", len(found), len(want), found)
	}

	// The same image without the keys: nothing.
	clean := t.TempDir()
	os.WriteFile(filepath.Join(clean, "hostname"), []byte("installer\n"), 0o644)
	img2 := filepath.Join(t.TempDir(), "clean.img")
	if out, err := exec.Command("sh", "-c", "truncate -s 64M "+img2+" && mkfs.ext4 -q -d "+clean+" "+img2).CombinedOutput(); err != nil {
		t.Fatalf("mkfs: %v: %s", err, out)
	}
	if found, err := rig.ScanImage(context.Background(), img2, []byte(body)); err != nil || len(found) != 0 {
		t.Fatalf("clean image: %v %v", found, err)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestAccelProbe: the probe's boot (kernel start to its panic for lack of
// a root) works and is timed under TCG, so a failing KVM probe means KVM
// is slow or missing, not that the probe is broken; the KVM result and
// the accelerator the rig chose are printed.
func TestAccelProbe(t *testing.T) {
	rig.Require(t)
	img := rig.Build(t, rig.Options{})
	ctx := context.Background()
	took, err := rig.ProbeBoot(ctx, img, "tcg,thread=multi", 60*time.Second)
	if err != nil {
		t.Fatalf("probe boot under TCG: %v", err)
	}
	t.Logf("TCG: kernel start to panic in %s", took.Round(10*time.Millisecond))
	kvm, err := rig.ProbeKVM(ctx, img, rig.KVMProbeLimit)
	switch {
	case err == nil:
		t.Logf("KVM: kernel start to panic in %s (limit %s)", kvm.Round(10*time.Millisecond), rig.KVMProbeLimit)
	case errors.Is(err, rig.ErrSlowKVM):
		t.Logf("KVM: %v", err)
	default:
		t.Fatalf("ProbeKVM: an error that is not rig.ErrSlowKVM: %v", err)
	}
	t.Logf("the rig uses -accel %s", rig.Accel(img))
}

// TestAarch64 boots the aarch64 installer (qemu -M virt under TCG with
// Debian's UEFI firmware): the guest runs arm64 under UEFI from the live
// overlay; the stand-in nixos-install lays its arm64 system onto a disk,
// and the machine reboots into it through the firmware; device-mapper
// works. The iso and kexec profiles build for aarch64 too. Two VM boots.
func TestAarch64(t *testing.T) {
	rig.RequireArch(t, rig.ArchAarch64)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	for _, p := range []string{rig.ProfileISO, rig.ProfileKexec} {
		if img := rig.Build(t, rig.Options{Arch: rig.ArchAarch64, Profile: p}); img.Arch != rig.ArchAarch64 || img.Profile != p {
			t.Errorf("built %s/%s, want %s/%s", img.Arch, img.Profile, rig.ArchAarch64, p)
		}
	}
	vm := rig.Boot(t, rig.Options{Arch: rig.ArchAarch64, Disks: []int64{2 << 30}})
	facts := "uname -m; test -d /sys/firmware/efi && echo uefi; findmnt -n -o SOURCE,FSTYPE /; hostname"
	if out := vm.MustRun(t, facts); out != "aarch64\nuefi\noverlay overlay\ninstaller\n" {
		t.Fatalf("want an aarch64 live installer under UEFI, got:\n%s", out)
	}
	// device-mapper (LVM, LUKS): dm-mod is a module on arm64, which needs
	// dax's.
	if out := vm.MustRun(t, "modprobe dm_mod && test -c /dev/mapper/control && dmsetup targets | grep -o '^linear'"); out != "linear\n" {
		t.Fatalf("want device-mapper with its linear target, got:\n%s", out)
	}
	start := time.Now()
	vm.MustRun(t, `set -e
sgdisk -n1:0:0 -t1:8300 /dev/vda >/dev/null && udevadm settle
mkfs.ext4 -q -F -L nixos /dev/vda1 && mount /dev/vda1 /mnt
mkdir -p /mnt/etc/ssh /tmp/f
ssh-keygen -q -t ed25519 -N '' -C installed -f /mnt/etc/ssh/ssh_host_ed25519_key
echo '{ outputs = { self }: { nixosConfigurations.board.config = { networking.hostName = "board"; }; }; }' > /tmp/f/flake.nix
nixos-install --root /mnt --no-root-passwd --flake /tmp/f#board
umount /mnt`)
	t.Logf("stand-in install on aarch64 in %s", time.Since(start).Round(time.Second))
	pub, err := vm.Run(ctx, "mount /dev/vda1 /mnt && cat /mnt/etc/ssh/ssh_host_ed25519_key.pub && umount /mnt")
	if err != nil {
		t.Fatal(err)
	}
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(pub))
	if err != nil {
		t.Fatal(err)
	}
	if err := vm.Reboot(ctx, key); err != nil {
		t.Fatal(err)
	}
	if out := vm.MustRun(t, facts+"; file -L /usr/bin/age 2>/dev/null | grep -o aarch64 || od -An -tx1 -j18 -N2 /usr/bin/age"); out != "aarch64\nuefi\n/dev/vda1 ext4\nboard\n b7 00\n" {
		t.Fatalf("want the installed arm64 system booted under UEFI, got:\n%s", out)
	}
}

// TestZFS boots the ZFS variant: the module built once for the rig's
// kernel loads, and a mirrored pool with a dataset is created, written,
// exported and imported again. One VM boot.
func TestZFS(t *testing.T) {
	rig.Require(t)
	vm := rig.Boot(t, rig.Options{ZFS: true, Disks: []int64{512 << 20, 512 << 20}})
	if out := vm.MustRun(t, "lsmod | grep -c '^zfs ' || true"); out != "0\n" {
		t.Errorf("before use: want the module not loaded at boot (nothing imports pools), got:\n%s", out)
	}
	out := vm.MustRun(t, `set -e
modprobe zfs
zpool create -f -o ashift=12 -O mountpoint=none tank mirror /dev/vda /dev/vdb
zfs create -o mountpoint=/srv/data tank/data
echo hello > /srv/data/f
zpool export tank
zpool import -d /dev tank
cat /srv/data/f
zpool list -H -o name,health tank
cat /sys/module/zfs/version`)
	if !strings.HasPrefix(out, "hello\ntank\tONLINE\n2.") {
		t.Fatalf("zpool on the zfs variant:\n%s", out)
	}
	t.Logf("zfs %s on %s", strings.TrimSpace(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:]), vm.Image.Release)
}
