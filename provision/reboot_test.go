package provision

import (
	"testing"

	"github.com/fleetnix/fleet/remote"
)

// TestInstalledTarget (#16 item 2): after the reboot fleet logs in as
// --verify-user (root by default) with the operator's keys; the ISO's
// nixos password is not offered to the installed system, whose users are
// its configuration's.
func TestInstalledTarget(t *testing.T) {
	pw := func(user, host string) ([]byte, error) { return []byte("x"), nil }
	for _, c := range []struct {
		login, verify, want string
		password            bool
	}{
		{login: "nixos", verify: "root", want: "root@10.0.0.5:22", password: false},
		{login: "root", verify: "root", want: "root@10.0.0.5:22", password: true},
		{login: "nixos", verify: "nixos", want: "nixos@10.0.0.5:22", password: true},
	} {
		in := &job{o: Options{Target: remote.Target{User: c.login, Host: "10.0.0.5", Port: 22}, VerifyUser: c.verify,
			Dial: remote.Options{Auth: remote.Auth{IdentityFiles: []string{"/k"}, Password: pw, PasswordFrom: "$SSHPASS"}}}}
		tg, opts := in.installedTarget()
		if tg.String() != c.want || (opts.Auth.Password != nil) != c.password || opts.Auth.IdentityFiles[0] != "/k" {
			t.Errorf("%s -> %s: got %s, password %v", c.login, c.verify, tg, opts.Auth.Password != nil)
		}
	}
}
