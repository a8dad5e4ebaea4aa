package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/fleetnix/fleet/remote"
	"github.com/fleetnix/fleet/secrets"
	"github.com/fleetnix/fleet/test/nixtest"
	"github.com/fleetnix/fleet/test/sshtest"
)

// verifyHosts is how many booted hosts the fleet verify benchmark checks.
const verifyHosts = 16

// verifyFlake declares verifyHosts hosts, each with the same four secrets
// (the flake's own .age files) where agenix puts them.
const verifyFlake = `{
  outputs = { self }: {
    nixosConfigurations = builtins.listToAttrs (map (i: let name = "h${toString i}"; in {
      inherit name;
      value.config = {
        nixpkgs.hostPlatform.system = "x86_64-linux";
        networking.hostName = name;
        age.identityPaths = [ "IDENTITY" ];
        age.secrets = builtins.listToAttrs (map (s: { name = s; value.file = ./secrets + "/${s}.age"; }) [ "api" "db" "smb" "wg" ]);
      };
    }) (builtins.genList (i: i) N));
  };
}
`

// verifyLayout is agenix's activation, in each host's sshd namespace.
const verifyLayout = `set -e
mkdir -p /run/agenix.d && mount -t ramfs -o mode=0751 ramfs /run/agenix.d && mkdir /run/agenix.d/1
cd /run/agenix.d/1
(umask 0377; printf %s "$1" > api; printf %s "$2" > db; printf %s "$3" > smb; printf %s "$4" > wg)
ln -sfT /run/agenix.d/1 /run/agenix`

// TestVerifyFleet: the first-boot check of 16 booted hosts (loopback
// sshds, each with agenix's layout on a ramfs in its own mount namespace,
// four secrets each), as one `fleet verify --all` against what one does
// without it: one `fleet verify HOST` after another, and 16 of them at
// once with xargs -P. Each `fleet verify` evaluates the flake with the
// real nix; --all evaluates every host in one nix eval. Every contender
// reaches each host through the same ssh_config aliases and known_hosts,
// and decrypts with the same operator key.
func TestVerifyFleet(t *testing.T) {
	Require(t)
	nixtest.Require(t, "nix", "git")
	op, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	opFile := filepath.Join(dir, "operator.age")
	os.WriteFile(opFile, []byte(op.String()+"\n"), 0o600)
	identity := filepath.Join(dir, "host.key")
	os.WriteFile(identity, []byte("a host identity\n"), 0o600)
	plain := []string{"sk-api-0123", "DB_PASSWORD=0123", "username=nas\npassword=0123\n", "[Interface]\nPrivateKey = 0123\n"}
	files := map[string]string{"flake.nix": strings.NewReplacer("IDENTITY", identity, "N", strconv.Itoa(verifyHosts)).Replace(verifyFlake)}
	for i, s := range []string{"api", "db", "smb", "wg"} {
		ct, err := secrets.Encrypt([]byte(plain[i]), []string{op.Recipient().String()}, false)
		if err != nil {
			t.Fatal(err)
		}
		files["secrets/"+s+".age"] = string(ct)
	}
	fl := nixtest.Repo(t, files)
	st := nixtest.NewStore(t)
	env := append(os.Environ(), st.ClientEnv()...)
	st.Nix(fl, "flake", "lock", fl)

	key := sshtest.NewKey(t, "ed25519", "", "bench")
	var sshConfig, known, hosts []string
	for i := 0; i < verifyHosts; i++ {
		s := sshtest.Start(t, sshtest.Options{AuthorizedKeys: []string{key.Line}})
		c, err := remote.Dial(context.Background(), remote.Target{User: s.User, Host: s.Host, Port: s.Port}, remote.Options{
			HostKey: remote.HostKeyPolicy{Pin: s.Fingerprint()}, Auth: remote.Auth{IdentityFiles: []string{key.Path}, AgentSocket: "none"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Run(context.Background(), remote.Cmd{Args: append([]string{"sh", "-c", verifyLayout, "x"}, plain...)}); err != nil {
			t.Fatal(err)
		}
		c.Close()
		h := fmt.Sprintf("h%d", i)
		hosts = append(hosts, h)
		sshConfig = append(sshConfig, "Host "+h, "  HostName 127.0.0.1", "  Port "+strconv.Itoa(s.Port), "  User "+s.User, "  IdentityFile "+key.Path, "  IdentitiesOnly yes", "")
		known = append(known, s.KnownHostsLine())
	}
	cfg := filepath.Join(dir, "ssh_config")
	kh := filepath.Join(dir, "known_hosts")
	os.WriteFile(cfg, []byte(strings.Join(sshConfig, "\n")), 0o600)
	os.WriteFile(kh, []byte(strings.Join(known, "\n")+"\n"), 0o600)
	fleet := filepath.Join(dir, "fleet")
	if out, err := exec.Command("go", "build", "-o", fleet, "github.com/fleetnix/fleet/cmd/fleet").CombinedOutput(); err != nil {
		t.Fatalf("go build fleet: %v\n%s", err, out)
	}
	common := []string{"--flake", fl, "--ssh-config", cfg, "--known-hosts", kh, "--host-identity", opFile}
	env = append(env, "SSH_AUTH_SOCK=", "HOSTS="+strings.Join(hosts, " "), "FLEET="+fleet, "COMMON="+remote.ShellJoin(common))
	run := Runner(env)
	// all checks every host is reported ok with all four secrets.
	all := func(args ...string) error {
		out, err := run(fleet, append(append([]string{"verify", "--all", "--json"}, common...), args...)...)
		if err != nil {
			return err
		}
		var got []struct {
			Host      string `json:"host"`
			OK        bool   `json:"ok"`
			SecretsOK int    `json:"secrets_ok"`
		}
		if err := json.Unmarshal(out, &got); err != nil {
			return err
		}
		if len(got) != verifyHosts {
			return fmt.Errorf("%d hosts reported, want %d", len(got), verifyHosts)
		}
		for _, g := range got {
			if !g.OK || g.SecretsOK != 4 {
				return fmt.Errorf("host %+v", g)
			}
		}
		return nil
	}
	// tables checks each single run's table came back with four ok rows.
	tables := func(out []byte, err error) error {
		if err != nil {
			return err
		}
		if n := bytes.Count(out, []byte(" match    ok\n")); n != 4*verifyHosts {
			return fmt.Errorf("%d secrets ok in the output, want %d", n, 4*verifyHosts)
		}
		return nil
	}
	one := `"$FLEET" verify "$1" --target "$1" $COMMON`
	rows := Measure(t, nil, []Contender{
		{Name: fmt.Sprintf("fleet verify --all, %d hosts (-j 16, one nix eval)", verifyHosts), Run: func() error { return all() }},
		{Name: "for h in ...; do fleet verify $h --target $h; done", Run: func() error {
			return tables(run("sh", "-c", `for h in $HOSTS; do sh -c '`+one+`' x "$h" || exit 1; done`))
		}},
		{Name: "xargs -P 16 fleet verify $h --target $h", Run: func() error {
			return tables(run("sh", "-c", `printf '%s\n' $HOSTS | xargs -P 16 -I H sh -c '`+one+`' x H`))
		}},
		{Name: "fleet verify --all -j 1 (one host at a time, one nix eval)", Run: func() error { return all("-j", "1") }},
		{Name: "fleet verify h0 (one host, for scale)", Run: func() error {
			out, err := run("sh", "-c", one, "x", "h0")
			if err == nil && bytes.Count(out, []byte(" match    ok\n")) != 4 {
				err = fmt.Errorf("table: %s", out)
			}
			return err
		}},
	})
	Record(t, Table(fmt.Sprintf("The first-boot check of %d hosts (loopback sshds, agenix's layout on ramfs, 4 secrets each)", verifyHosts), rows, 0)+
		"\nEach `fleet verify HOST` evaluates the flake with nix (the operator's nix, a cold process each time) before it connects;\n"+
		"`--all` evaluates every host in one nix eval and then checks the hosts 16 at a time over one connection each.\n"+
		"The sshds and nix share this machine's 2 cores with fleet, as in the facts benchmark.\n")
}
