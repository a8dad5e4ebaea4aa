package provision

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/fleetnix/fleet/remote"
)

// scanScript lists, on every writable local filesystem but the new root,
// the files holding private key material (OpenSSH or PEM private key
// blocks, age secret keys, the OpenSSH key format's magic in base64), the
// authorized_keys files of root and of the login user, fleet's temporary
// files, this connection's forwarded agent socket if it is still there,
// and the login user's ~/.ssh and ~/.ssh/agent. Overlay mounts are covered
// by their upper directories' own filesystems, so the read-only store is
// not walked.
//
// This connection's agent socket is where OpenSSH's sshd put it: from
// 10.1 on ~/.ssh/agent/s.HASH.sshd.RANDOM in the login user's home
// (misc-agent.c, agent_listener), which the fetch saw in SSH_AUTH_SOCK
// (sock); before 10.1, /tmp/ssh-XXXXXXXXXX/agent.PID, PID the
// connection's sshd process: an ancestor of this shell (sudo may stand
// between them). Other connections' sockets are not this install's.
const scanScript = `root=$1 user=$2 sock=$3; shift 3
mounts=$({ if [ $# -gt 0 ]; then printf '%s\n' "$@"; else
awk '{ for (i = 7; $i != "-"; i++) ; fs = $(i+1); split($6, o, ","); if (o[1] == "rw") print fs " " $5 }' /proc/self/mountinfo |
while read -r fs mp; do
  case "$fs" in overlay|proc|sysfs|cgroup|cgroup2|devpts|mqueue|securityfs|debugfs|tracefs|pstore|bpf|configfs|fusectl|hugetlbfs|autofs|efivarfs|binfmt_misc|nsfs|rpc_pipefs) continue ;; esac
  case "$mp" in "$root"|"$root"/*) continue ;; esac
  printf '%s\n' "$mp"
done; fi; } | sort -u)
printf '%s\n' "$mounts" | while read -r mp; do
  [ -n "$mp" ] || continue
  find "$mp" -xdev -type f -size -65536k ! -path "$root/*" -exec grep -l -a -E 'PRIVATE KEY-----|AGE-SECRET-KEY-1|b3BlbnNzaC1rZXktdjE' {} + 2>/dev/null
done | sort -u | while read -r f; do
  case "$f" in "$root"/*) continue ;; esac
  s=$(sha256sum < "$f"); printf 'K\t%s\t%s\n' "$f" "${s%% *}"
done
home_of() { awk -F: -v u="$1" '$1 == u { print $6; exit }' /etc/passwd; }
for u in root "$user"; do
  h=$(home_of "$u")
  for f in ${h:+"$h/.ssh/authorized_keys" "$h/.ssh/authorized_keys2"} "/etc/ssh/authorized_keys.d/$u"; do
    [ -f "$f" ] && { s=$(sha256sum < "$f"); printf 'A\t%s\t%s\n' "$f" "${s%% *}"; }
  done
done | sort -u
printf '%s\n' "$mounts" | while read -r mp; do
  [ -n "$mp" ] || continue
  find "$mp" -xdev -name '.fleet-upload.*' ! -path "$root/*" 2>/dev/null | while read -r f; do
    printf 'T\t%s\n' "$f"
  done
done
{ [ -n "$sock" ] && printf '%s\n' "$sock"
  p=$$
  while [ "$p" -gt 1 ] 2>/dev/null; do
    for s in /tmp/ssh-*/agent."$p"; do printf '%s\n' "$s"; done
    p=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | cut -d' ' -f2)
  done; } | while read -r s; do [ -S "$s" ] && printf 'S\t%s\n' "$s"; done | sort -u
home=$(home_of "$user")
if [ -n "$home" ] && [ "$home" != / ]; then
  for d in "$home/.ssh" "$home/.ssh/agent"; do [ -d "$d" ] && printf 'D\t%s\n' "$d"; done
fi
true
`

type scanResult struct {
	keys, authorized     map[string]string
	temps, sockets, dirs []string
}

func (in *job) runScan(ctx context.Context) (*scanResult, error) {
	args := append([]string{"sh", "-c", scanScript, "fleet-scan", in.o.Root, in.c.Endpoint().User, in.agentSock}, in.o.ScanRoots...)
	res, err := in.c.Run(ctx, remote.Cmd{Args: args, Label: "scan the installer for key material"})
	if err != nil {
		return nil, fmt.Errorf("scan: %w", err)
	}
	sr := &scanResult{keys: map[string]string{}, authorized: map[string]string{}}
	for _, l := range strings.Split(string(res.Stdout), "\n") {
		f := strings.Split(l, "\t")
		switch {
		case f[0] == "K" && len(f) == 3:
			sr.keys[f[1]] = f[2]
		case f[0] == "A" && len(f) == 3:
			sr.authorized[f[1]] = f[2]
		case f[0] == "T" && len(f) == 2:
			sr.temps = append(sr.temps, f[1])
		case f[0] == "S" && len(f) == 2:
			sr.sockets = append(sr.sockets, f[1])
		case f[0] == "D" && len(f) == 2 && cleanAbs(f[1]):
			sr.dirs = append(sr.dirs, f[1])
		}
	}
	return sr, nil
}

// takeBaseline records what the installer holds before fleet changes it.
func (in *job) takeBaseline(ctx context.Context) (scanBaseline, error) {
	sr, err := in.runScan(ctx)
	if err != nil {
		return scanBaseline{}, err
	}
	return scanBaseline{Keys: sr.keys, Authorized: sr.authorized, Dirs: sr.dirs}, nil
}

// scan fails the install if the installer holds anything it should not
// (see leftovers).
func (in *job) scan(ctx context.Context) error {
	if in.o.DryRun {
		fmt.Fprintf(in.o.Out, "[%s] %s: scan writable filesystems outside %s for key material, temp files and agent sockets\n", PhaseScan, in.r.Host(), in.o.Root)
		return nil
	}
	sr, err := in.runScan(ctx)
	if err != nil {
		return err
	}
	if found := leftovers(in.base, sr, in.agentSock); len(found) > 0 {
		return fmt.Errorf("the installer holds what it should not:\n  %s\nhint: remove them before rebooting; the install is otherwise complete (re-run with --resume --phases scan,reboot,verify)", strings.Join(found, "\n  "))
	}
	return nil
}

// leftovers compares a scan with the baseline: new or changed files with
// private key material outside the new root, a changed authorized_keys,
// fleet's temporary files, this connection's forwarded agent socket, and
// the directories sshd made for it (OpenSSH 10.1's ~/.ssh/agent, and
// ~/.ssh when it was missing: those on the path of agentSock that the
// baseline did not have). Sorted.
func leftovers(base scanBaseline, sr *scanResult, agentSock string) []string {
	var found []string
	for f, sum := range sr.keys {
		if was, ok := base.Keys[f]; !ok {
			found = append(found, "private key material in "+f)
		} else if was != sum {
			found = append(found, "private key material changed in "+f)
		}
	}
	for f, sum := range base.Authorized {
		if sr.authorized[f] != sum {
			found = append(found, f+" changed")
		}
	}
	for f := range sr.authorized {
		if _, ok := base.Authorized[f]; !ok {
			found = append(found, f+" appeared")
		}
	}
	for _, f := range sr.temps {
		found = append(found, "fleet temporary file left: "+f)
	}
	for _, s := range sr.sockets {
		found = append(found, "forwarded agent socket still open: "+s)
	}
	for _, d := range sr.dirs {
		if !slices.Contains(base.Dirs, d) && strings.HasPrefix(agentSock, d+"/") {
			found = append(found, "directory sshd made for the forwarded agent left: "+d)
		}
	}
	sort.Strings(found)
	return found
}
