package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/fleetnix/fleet/facts"
	"github.com/fleetnix/fleet/remote"
	"github.com/fleetnix/fleet/test/sshtest"
)

// TestFanout: the facts of 32 machines (32 loopback sshds, each with its
// own host key) with one `fleet facts` call, against what a user would do
// without it: a shell loop of ssh, or xargs -P 16 ssh, running the same
// script fleet runs. For scale: fleet against one machine, and one fleet
// call per machine in a loop. Every contender opens its own connections and
// checks host keys against the same known_hosts file.
func TestFanout(t *testing.T) {
	Require(t)
	const hosts = 32
	key := sshtest.NewKey(t, "ed25519", "", "bench")
	var srvs []*sshtest.Server
	var known, targets, ports []string
	for i := 0; i < hosts; i++ {
		s := sshtest.Start(t, sshtest.Options{AuthorizedKeys: []string{key.Line}})
		srvs = append(srvs, s)
		known = append(known, s.KnownHostsLine())
		targets = append(targets, s.Target())
		ports = append(ports, strconv.Itoa(s.Port))
	}
	kh := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(kh, []byte(strings.Join(known, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fleet := filepath.Join(t.TempDir(), "fleet")
	if out, err := exec.Command("go", "build", "-o", fleet, "github.com/fleetnix/fleet/cmd/fleet").CombinedOutput(); err != nil {
		t.Fatalf("go build fleet: %v\n%s", err, out)
	}
	connArgs := []string{"-i", key.Path, "--known-hosts", kh, "--ssh-config", "none"}
	sshOpts := remote.ShellJoin([]string{"-F", "/dev/null", "-i", key.Path, "-o", "IdentitiesOnly=yes", "-o", "UserKnownHostsFile=" + kh, "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"})
	env := append(os.Environ(),
		"SSH_AUTH_SOCK=",
		"PORTS="+strings.Join(ports, " "),
		"TARGETS="+strings.Join(targets, " "),
		// What fleet runs on each machine, as one remote command line.
		"FACTS_CMD=sh -c "+remote.ShellQuote(facts.Script()),
	)
	run := Runner(env)
	// fleetMany checks that every target is reported, in order, with its
	// own host key.
	fleetMany := func() error {
		out, err := run(fleet, append(append([]string{"facts", "--json"}, connArgs...), targets...)...)
		if err != nil {
			return err
		}
		var got []struct {
			Target  string `json:"target"`
			HostKey string `json:"host_key"`
			System  string `json:"system"`
			Error   string `json:"error"`
		}
		if err := json.Unmarshal(out, &got); err != nil {
			return err
		}
		if len(got) != hosts {
			return fmt.Errorf("%d hosts reported, want %d", len(got), hosts)
		}
		for i, g := range got {
			if g.Target != targets[i] || g.HostKey != srvs[i].Fingerprint() || g.System == "" || g.Error != "" {
				return fmt.Errorf("host %d: %+v", i, g)
			}
		}
		return nil
	}
	// sections checks the raw script output of every host came back.
	sections := func(out []byte, err error) error {
		if err != nil {
			return err
		}
		if n := bytes.Count(out, []byte("@@block\n")); n != hosts {
			return fmt.Errorf("%d hosts' facts in the output, want %d", n, hosts)
		}
		return nil
	}
	rows := Measure(t, nil, []Contender{
		{Name: fmt.Sprintf("fleet facts, %d targets (--parallel 16)", hosts), Run: fleetMany},
		{Name: "for t in ...; do ssh $t \"$FACTS_CMD\"; done", Run: func() error {
			return sections(run("sh", "-c", `for p in $PORTS; do ssh `+sshOpts+` -p "$p" root@127.0.0.1 "$FACTS_CMD" || exit 1; done`))
		}},
		{Name: "xargs -P 16 ssh (output interleaved)", Run: func() error {
			return sections(run("sh", "-c", `printf '%s\n' $PORTS | xargs -P 16 -I PORT ssh `+sshOpts+` -p PORT root@127.0.0.1 "$FACTS_CMD"`))
		}},
		{Name: "for t in ...; do fleet facts --target $t; done", Run: func() error {
			return sections(run("sh", "-c", `for t in $TARGETS; do `+remote.ShellJoin(append([]string{fleet, "facts"}, connArgs...))+` --target "$t" | grep -q '^DISK' && echo @@block || exit 1; done`))
		}},
		{Name: "fleet facts, 1 target (for scale)", Run: func() error {
			out, err := run(fleet, append([]string{"facts", "--json", "--target", targets[0]}, connArgs...)...)
			if err == nil && !bytes.Contains(out, []byte(srvs[0].Fingerprint())) {
				err = fmt.Errorf("no host key in the output: %s", out)
			}
			return err
		}},
	})
	Record(t, Table(fmt.Sprintf("Facts of %d machines (loopback sshds), one command", hosts), rows, 0)+
		"\nThe sshds and the script each host runs (about 0.2 s of CPU here: it forks cat, readlink and ls\n"+
		"per block device) share the clients' 2 cores, so running 16 at a time gains less than against\n"+
		"real machines, where each host brings its own CPU and the wait is the network.\n")
}
