package bench

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/fleetnix/fleet/test/testenv"
)

// Link is a network namespace joined to this one by a veth pair whose
// both ends are shaped to a rate by a token bucket (tbf): a machine across
// a LAN, for contenders whose speed the loopback's shared CPU would
// otherwise decide. (This kernel has no netem, so there is no added
// delay: the round trip is the veth's, tens of microseconds.)
type Link struct {
	NS      string // the namespace's name (ip netns exec NS ...)
	Host    string // this side's address
	Peer    string // the namespace side's address
	Rate    string // as tc takes it: "1gbit"
	Delay   string // one way: "250us"
	hostDev string
	peerDev string
}

// NewLink makes the namespace and the link, or skips t when ip or tc is
// missing (iproute2). It is removed when t ends.
func NewLink(t *testing.T, rate string) *Link {
	t.Helper()
	for _, bin := range []string{"ip", "tc"} {
		if _, err := exec.LookPath(bin); err != nil {
			testenv.Missing(t, "%s not found: install iproute2", bin)
		}
	}
	id := os.Getpid() % 100000
	l := &Link{
		NS: fmt.Sprintf("fleet-bench-%d", id), Host: "10.213.0.1", Peer: "10.213.0.2",
		Rate:    rate,
		hostDev: fmt.Sprintf("fb%dh", id), peerDev: fmt.Sprintf("fb%dn", id),
	}
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	run("ip", "netns", "add", l.NS)
	t.Cleanup(func() {
		exec.Command("ip", "link", "del", l.hostDev).Run()
		exec.Command("ip", "netns", "del", l.NS).Run()
	})
	ns := func(args ...string) { run(append([]string{"ip", "netns", "exec", l.NS}, args...)...) }
	run("ip", "link", "add", l.hostDev, "type", "veth", "peer", "name", l.peerDev)
	run("ip", "link", "set", l.peerDev, "netns", l.NS)
	run("ip", "addr", "add", l.Host+"/30", "dev", l.hostDev)
	run("ip", "link", "set", l.hostDev, "up")
	ns("ip", "link", "set", "lo", "up")
	ns("ip", "addr", "add", l.Peer+"/30", "dev", l.peerDev)
	ns("ip", "link", "set", l.peerDev, "up")
	// The bucket must hold more than a timer tick's worth of bytes at this
	// rate or the rate is never reached; the queue a few ms of them.
	tbf := []string{"root", "tbf", "rate", rate, "burst", "1mb", "latency", "20ms"}
	run(append([]string{"tc", "qdisc", "add", "dev", l.hostDev}, tbf...)...)
	ns(append([]string{"tc", "qdisc", "add", "dev", l.peerDev}, tbf...)...)
	return l
}

// String describes the link for a table's title.
func (l *Link) String() string {
	return fmt.Sprintf("a network namespace over a %s link (veth shaped by tbf)", strings.Replace(l.Rate, "gbit", " Gbit/s", 1))
}
