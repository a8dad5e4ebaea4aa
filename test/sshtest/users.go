package sshtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/fleetnix/fleet/test/testenv"
)

// User is a login user the server knows besides the test's own (root):
// the NixOS installer's nixos, say. It exists only inside the server's
// mount namespace, where private copies of /etc/passwd, /etc/shadow,
// /etc/group and /etc/sudoers are bind-mounted over the host's, so the
// host's /etc is never touched.
type User struct {
	Name string
	// Password is its login password, stored as a SHA-512 crypt hash;
	// "" means none ("*": no password logs in, keys still do).
	Password string
	// Sudo gives it passwordless sudo ("NAME ALL=(ALL:ALL) NOPASSWD:
	// ALL"), as the NixOS installer's nixos user has. Without it the user
	// has no sudo rights at all.
	Sudo bool
	// SudoWithPassword gives it sudo that asks for its password (a host
	// where `sudo -n` fails).
	SudoWithPassword bool
	// Keys are authorized_keys lines for its ~/.ssh/authorized_keys; none
	// means no ~/.ssh, as on the installer.
	Keys []string
}

// account is a User as set up for one server.
type account struct {
	User
	uid  int
	home string
}

// Home is the home directory of a user from Options.Users (on the host's
// filesystem, so a test can check what a session left there).
func (s *Server) Home(name string) string { return s.account(name).home }

// UID is the uid of a user from Options.Users.
func (s *Server) UID(name string) int { return s.account(name).uid }

// TargetAs is "name@127.0.0.1:PORT".
func (s *Server) TargetAs(name string) string { return name + "@" + s.Addr() }

func (s *Server) account(name string) account {
	for _, a := range s.accounts {
		if a.Name == name {
			return a
		}
	}
	panic("sshtest: no user " + name)
}

// setupUsers writes the private /etc files for opts' users and returns the
// bind mounts (source, target) that put them in place.
func (s *Server) setupUsers(t testenv.TB, opts Options) [][2]string {
	t.Helper()
	if len(opts.Users) == 0 && !opts.KbdInteractive {
		return nil
	}
	passwd, group, shadow := readEtc(t, "/etc/passwd"), readEtc(t, "/etc/group"), readEtc(t, "/etc/shadow")
	used := map[int]bool{}
	for _, l := range append(strings.Split(passwd, "\n"), strings.Split(group, "\n")...) {
		if f := strings.Split(l, ":"); len(f) > 2 {
			n, _ := strconv.Atoi(f[2])
			used[n] = true
		}
	}
	homes, err := os.MkdirTemp("", "sshtest-home")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(homes) })
	if err := os.Chmod(homes, 0o755); err != nil {
		t.Fatal(err)
	}
	sudoers := "Defaults env_reset\nDefaults secure_path=\"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"\nroot ALL=(ALL:ALL) ALL\n"
	uid := 4200
	for _, u := range opts.Users {
		for used[uid] {
			uid++
		}
		used[uid] = true
		a := account{User: u, uid: uid, home: filepath.Join(homes, u.Name)}
		if err := os.Mkdir(a.home, 0o700); err != nil {
			t.Fatal(err)
		}
		if len(u.Keys) > 0 {
			ssh := filepath.Join(a.home, ".ssh")
			if err := os.Mkdir(ssh, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(ssh, "authorized_keys"), []byte(strings.Join(u.Keys, "\n")+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			chown(t, ssh, uid)
			chown(t, filepath.Join(ssh, "authorized_keys"), uid)
		}
		chown(t, a.home, uid)
		hash := "*" // not "!": sshd takes that for a locked account and refuses keys too
		if u.Password != "" {
			hash = cryptPassword(t, u.Password)
		}
		passwd += fmt.Sprintf("%s:x:%d:%d::%s:/bin/sh\n", u.Name, uid, uid, a.home)
		group += fmt.Sprintf("%s:x:%d:\n", u.Name, uid)
		shadow += fmt.Sprintf("%s:%s::0:99999:7:::\n", u.Name, hash)
		switch {
		case u.Sudo:
			sudoers += u.Name + " ALL=(ALL:ALL) NOPASSWD: ALL\n"
		case u.SudoWithPassword:
			sudoers += u.Name + " ALL=(ALL:ALL) ALL\n"
		}
		s.accounts = append(s.accounts, a)
	}
	etc := filepath.Join(s.Dir, "etc")
	if err := os.MkdirAll(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	var binds [][2]string
	put := func(name, content string, mode os.FileMode) {
		p := filepath.Join(etc, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		binds = append(binds, [2]string{p, "/etc/" + name})
	}
	put("passwd", passwd, 0o644)
	put("group", group, 0o644)
	put("shadow", shadow, 0o640)
	if _, err := os.Stat("/etc/sudoers"); err == nil {
		put("sudoers", sudoers, 0o440)
	}
	if opts.KbdInteractive {
		// pam_unix alone: the host's stack may hold modules (loginuid,
		// systemd) that have no place in a test's namespace.
		if err := os.MkdirAll(filepath.Join(etc, "pam.d"), 0o755); err != nil {
			t.Fatal(err)
		}
		put("pam.d/sshd", "auth required pam_unix.so\naccount required pam_unix.so\nsession required pam_unix.so\npassword required pam_unix.so\n", 0o644)
	}
	return binds
}

// cryptPassword is password's SHA-512 crypt(3) hash, as passwd writes it.
func cryptPassword(t testenv.TB, password string) string {
	t.Helper()
	testenv.Programs(t, "openssl")
	cmd := exec.Command("openssl", "passwd", "-6", "-stdin")
	cmd.Stdin = strings.NewReader(password + "\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl passwd: %v", err)
	}
	return strings.TrimSpace(string(out))
}

func readEtc(t testenv.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if s != "" && !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	return s
}

func chown(t testenv.TB, p string, uid int) {
	t.Helper()
	if err := os.Lchown(p, uid, uid); err != nil {
		t.Fatal(err)
	}
}
