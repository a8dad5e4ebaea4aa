package rig_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/fleetnix/fleet/test/rig"
)

// tools are the programs whose presence tells the installers apart, and
// where each profile has them (see test/rig/profiles/*.sh for the
// sources): the NixOS ISO has git (24.11+) but no age, jq or openssl;
// the kexec installer has no git, cryptsetup, sudo, efibootmgr or
// nvme-cli; the rig's own has everything but openssl.
var tools = []struct {
	name             string
	debian, iso, kex bool
}{
	{"git", true, true, false},
	{"rsync", true, true, true},
	{"sgdisk", true, true, true},
	{"parted", true, true, true},
	{"cryptsetup", true, true, false},
	{"mdadm", true, true, true},
	{"lvm", true, true, true},
	{"mkfs.vfat", true, true, true},
	{"mkfs.ext4", true, true, true},
	{"mkfs.xfs", true, true, true},
	{"mkfs.btrfs", true, true, true},
	{"nix", true, true, true},
	{"nixos-install", true, true, true},
	{"sudo", true, true, false},
	{"jq", true, false, true},
	{"age", true, false, false},
	{"openssl", false, false, false},
	{"efibootmgr", true, true, false},
	{"nvme", true, true, false},
}

// toolScript prints "NAME yes|no" for each tool on the session's PATH,
// then the os-release ID and VARIANT_ID and what /bin/sh is.
func toolScript() string {
	var names []string
	for _, tl := range tools {
		names = append(names, tl.name)
	}
	return `for p in ` + strings.Join(names, " ") + `; do if command -v "$p" >/dev/null; then echo "$p yes"; else echo "$p no"; fi; done
. /etc/os-release; echo "os-release $ID $VARIANT_ID"; echo "sh $(readlink -f /bin/sh)"`
}

func wantTools(t *testing.T, profile, out string) {
	t.Helper()
	for _, tl := range tools {
		want := map[string]bool{rig.ProfileDebian: tl.debian, rig.ProfileISO: tl.iso, rig.ProfileKexec: tl.kex}[profile]
		yes := "no"
		if want {
			yes = "yes"
		}
		if !strings.Contains(out, "\n"+tl.name+" "+yes+"\n") && !strings.HasPrefix(out, tl.name+" "+yes+"\n") {
			t.Errorf("%s profile: want %s %s on the PATH", profile, tl.name, yes)
		}
	}
	if !strings.Contains(out, "\nos-release nixos installer\n") || !strings.Contains(out, "\nsh /usr/bin/bash\n") {
		t.Errorf("%s profile: want NixOS's os-release (ID=nixos, VARIANT_ID=installer) and sh as bash", profile)
	}
	if t.Failed() {
		t.Logf("%s", out)
	}
}

func session(t *testing.T, c *ssh.Client, script string) string {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := s.CombinedOutput(script)
	if err != nil {
		t.Fatalf("%s: %v: %s", script, err, out)
	}
	return string(out)
}

// TestProfileISO boots the NixOS ISO's profile: who can log in (nixos by
// password, with either method, then sudo; not root, not with a key, not
// with a wrong password), its tools, sshd settings and os-release; the
// stand-in nixos-install run through sudo; then old md, LVM and LUKS
// made on the disks in this boot, assembled by udev in the next. Two VM
// boots.
func TestProfileISO(t *testing.T) {
	rig.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	b := make([]byte, 9)
	rand.Read(b)
	password := hex.EncodeToString(b)
	vm := rig.Boot(t, rig.Options{Profile: rig.ProfileISO, Disks: []int64{1 << 30, 512 << 20, 512 << 20},
		Passwords: map[string]string{"nixos": password}})
	if vm.Target() != "nixos@127.0.0.1:"+itoa(vm.Port) {
		t.Errorf("Target %s, want the nixos user", vm.Target())
	}

	var nixos *ssh.Client
	t.Run("login", func(t *testing.T) {
		var err error
		if nixos, err = vm.Dial(ctx, "nixos", rig.PasswordAuth(password)...); err != nil {
			t.Fatalf("nixos with its password: %v", err)
		}
		if out := session(t, nixos, "id -un; sudo -n id -un"); out != "nixos\nroot\n" {
			t.Errorf("nixos, then sudo -n: %q", out)
		}
		// PAM's prompt may come after a round with no questions.
		kbd := ssh.KeyboardInteractive(func(_, _ string, q []string, _ []bool) ([]string, error) {
			a := make([]string, len(q))
			for i := range a {
				a[i] = password
			}
			return a, nil
		})
		if c, err := vm.Dial(ctx, "nixos", kbd); err != nil {
			t.Errorf("nixos by keyboard-interactive alone: %v", err)
		} else {
			c.Close()
		}
		signer := operatorSigner(t, vm)
		refused := []struct {
			what, user string
			auth       []ssh.AuthMethod
		}{
			{"nixos with a wrong password", "nixos", rig.PasswordAuth(password + "x")},
			{"root with its empty password", "root", rig.PasswordAuth("")},
			{"root with the operator key", "root", []ssh.AuthMethod{ssh.PublicKeys(signer)}},
			{"nixos with the operator key", "nixos", []ssh.AuthMethod{ssh.PublicKeys(signer)}},
		}
		for _, r := range refused {
			c, err := vm.Dial(ctx, r.user, r.auth...)
			if err == nil {
				c.Close()
				t.Errorf("%s: logged in", r.what)
			} else if !strings.Contains(err.Error(), "unable to authenticate") {
				t.Errorf("%s: want an authentication failure, got %v", r.what, err)
			}
		}
		if out := vm.MustRun(t, "find /root/.ssh /etc/ssh/authorized_keys.d -type f"); out != "" {
			t.Errorf("root has an authorized key: %s", out)
		}
	})
	if nixos == nil {
		t.Fatal("no nixos session")
	}
	defer nixos.Close()

	t.Run("facts", func(t *testing.T) {
		wantTools(t, rig.ProfileISO, session(t, nixos, toolScript()))
		sshd := vm.MustRun(t, "sshd -T -C user=nixos,host=h,addr=10.0.2.2 | grep -E '^(permitrootlogin|passwordauthentication|kbdinteractiveauthentication|usepam|permitemptypasswords|hostkey|allowagentforwarding) '")
		want := "permitrootlogin yes\nusepam yes\nhostkey /etc/ssh/ssh_host_rsa_key\nhostkey /etc/ssh/ssh_host_ed25519_key\n" +
			"permitemptypasswords no\npasswordauthentication yes\nkbdinteractiveauthentication yes\nallowagentforwarding yes\n"
		if sortLines(sshd) != sortLines(want) || !strings.Contains(sshd, "rsa_key\nhostkey /etc/ssh/ssh_host_ed25519") {
			t.Errorf("sshd -T:\n%s\nwant (RSA host key first):\n%s", sshd, want)
		}
		if out := vm.MustRun(t, "systemctl is-active systemd-udevd; hostname"); out != "active\nnixos\n" {
			t.Errorf("udevd, hostname: %q", out)
		}
		if len(vm.Image.HostKeys) != 2 || vm.Image.HostKeys[0].Type() != ssh.KeyAlgoRSA {
			t.Errorf("Image.HostKeys: want RSA, then ed25519")
		}
	})

	t.Run("stand-in nixos-install through sudo", func(t *testing.T) {
		start := time.Now()
		out := session(t, nixos, `set -e
mkdir -p /tmp/f && cd /tmp/f
echo '{ outputs = { self }: { nixosConfigurations.box.config = { networking.hostName = "box"; }; }; }' > flake.nix
sudo -n sh -c 'mkfs.ext4 -q -F -L nixos /dev/vda && mount /dev/vda /mnt'
sudo -n nixos-install --root /mnt --no-root-passwd --flake /tmp/f#box 2>&1 | tail -n 1
cat /mnt/etc/hostname; test -x /mnt/usr/bin/age && echo age restored; test -e /mnt/usr/lib/rig/hidden || echo nothing hidden
grep -c VARIANT_ID /mnt/etc/os-release || true
sudo -n umount /mnt`)
		t.Logf("stand-in install under the iso profile in %s", time.Since(start).Round(time.Second))
		if out != "installation finished (stand-in)\nbox\nage restored\nnothing hidden\n0\n" {
			t.Errorf("stand-in nixos-install: %q", out)
		}
	})

	t.Run("udev assembles old arrays at boot", func(t *testing.T) {
		vm.MustRun(t, `set -e
for d in vdb vdc; do sgdisk -n1:0:0 -t1:fd00 /dev/$d >/dev/null; done
udevadm settle
mdadm --create /dev/md/old --run --level=1 --raid-devices=2 --metadata=1.2 /dev/vdb1 /dev/vdc1 2>/dev/null
pvcreate -q /dev/md/old && vgcreate -q oldvg /dev/md/old && lvcreate -q -y -L 200M -n data oldvg
printf old-key | cryptsetup luksFormat -q --pbkdf pbkdf2 --pbkdf-force-iterations 1000 /dev/oldvg/data -
sync`)
		nixos.Close()
		if err := vm.BootInstaller(ctx); err != nil {
			t.Fatal(err)
		}
		out := vm.MustRun(t, "udevadm settle; cat /proc/mdstat; lvs --noheadings -o vg_name,lv_name,lv_active oldvg; blkid -o value -s TYPE /dev/oldvg/data")
		if !regexp.MustCompile(`md\d+ : active (\(auto-read-only\) )?raid1 vd[bc]1\[\d\] vd[bc]1\[\d\]`).MatchString(out) ||
			!regexp.MustCompile(`(?m)^\s*oldvg\s+data\s+active\s*$`).MatchString(out) || !strings.HasSuffix(out, "\ncrypto_LUKS\n") {
			t.Fatalf("after the boot: want the md raid1 assembled, oldvg/data active, a LUKS header on it; got\n%s", out)
		}
	})
}

// TestProfileKexec boots the kexec installer's profile: root logs in to
// its sshd with the key carried over, its tools (no git, cryptsetup or
// sudo), nixos a system user, os-release and udevd. One VM boot.
func TestProfileKexec(t *testing.T) {
	rig.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	vm := rig.Boot(t, rig.Options{Profile: rig.ProfileKexec, Disks: []int64{512 << 20}})
	if vm.Target() != "root@127.0.0.1:"+itoa(vm.Port) {
		t.Errorf("Target %s, want root", vm.Target())
	}
	cmd := exec.CommandContext(ctx, "ssh", append(vm.LoginArgs("root"), "--", toolScript()+`
echo "nixos uid $(id -u nixos)"; systemctl is-active systemd-udevd; hostname`)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("root with the operator key: %v: %s", err, out)
	}
	wantTools(t, rig.ProfileKexec, string(out))
	if !regexp.MustCompile(`\nnixos uid [1-9]\d{0,2}\nactive\nnixos-installer\n$`).Match(out) {
		t.Errorf("want nixos a system user (uid < 1000), udevd active, hostname nixos-installer:\n%s", out)
	}
	if c, err := vm.Dial(ctx, "root", rig.PasswordAuth("")...); err == nil {
		c.Close()
		t.Error("root logged in with its empty password")
	}
}

func operatorSigner(t *testing.T, vm *rig.VM) ssh.Signer {
	t.Helper()
	b, err := os.ReadFile(vm.Identity)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.ParsePrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func sortLines(s string) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	slices.Sort(l)
	return strings.Join(l, "\n")
}
