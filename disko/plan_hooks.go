package disko

import (
	"fmt"
	"strings"

	"github.com/fleetnix/fleet/remote"
)

// hooked puts n's create hooks around body, the steps that create n and
// its content, as disko does: each runs in bash (set -efu) with the node's
// fields as shell variables (type, device, name, and format, mountpoint,
// mountOptions, extraArgs where the node has them), device being the one
// fleet resolved (a partition's kernel node, not udev's by-partlabel link).
func (p *planner) hooked(n *Node, dev, disk, diskDev string, body []Step) []Step {
	if n.PreCreateHook == "" && n.PostCreateHook == "" {
		return body
	}
	hook := func(name, script string) Step {
		return Step{Phase: PhaseFormat, Action: &Hook{Name: name}, Disk: disk, Node: n.Path, Device: dev, DiskDev: diskDev,
			Cmds: [][]string{{"bash", "-c", "set -efu\n" + hookVars(n, dev) + script, "disko-" + name}}}
	}
	var out []Step
	if n.PreCreateHook != "" {
		out = append(out, hook("preCreateHook", n.PreCreateHook))
	}
	out = append(out, body...)
	if n.PostCreateHook != "" {
		out = append(out, hook("postCreateHook", n.PostCreateHook))
	}
	return out
}

// hookVars are the shell assignments of n's fields for its hooks.
func hookVars(n *Node, dev string) string {
	var b strings.Builder
	set := func(k, v string) { fmt.Fprintf(&b, "%s=%s\n", k, remote.ShellQuote(v)) }
	list := func(k string, vs []string) {
		q := make([]string, len(vs))
		for i, v := range vs {
			q[i] = remote.ShellQuote(v)
		}
		fmt.Fprintf(&b, "%s=(%s)\n", k, strings.Join(q, " "))
	}
	assoc := func(k string, m map[string]string) {
		var q []string
		for _, key := range sortedKeys(m) {
			q = append(q, "["+remote.ShellQuote(key)+"]="+remote.ShellQuote(m[key]))
		}
		fmt.Fprintf(&b, "declare -A %s=(%s)\n", k, strings.Join(q, " "))
	}
	set("type", n.Type)
	if dev != "" {
		set("device", dev)
	}
	switch {
	case n.Type == "zfs_fs" || n.Type == "zfs_volume":
		set("name", strings.TrimPrefix(n.Name, n.Pool+"/")) // disko's name option: without the pool
	case n.Name != "":
		set("name", n.Name)
	}
	switch n.Type {
	case "filesystem", "btrfs", "nodev":
		if n.Type != "btrfs" {
			set("format", n.Format)
		}
		if n.Mountpoint != "" {
			set("mountpoint", n.Mountpoint)
		}
		list("mountOptions", n.MountOptions)
		list("extraArgs", n.ExtraArgs)
	case "swap":
		list("extraArgs", n.ExtraArgs)
	case "zfs":
		set("pool", n.Pool)
	case "zpool":
		set("mountpoint", n.Mountpoint)
		list("mountOptions", n.MountOptions)
		assoc("options", n.Zpool.Options)
		assoc("rootFsOptions", poolRoot(n).Options)
	case "zfs_fs", "zfs_volume":
		assoc("options", n.Options)
		list("mountOptions", n.MountOptions)
		if n.Type == "zfs_fs" {
			set("mountpoint", n.Mountpoint)
		} else {
			list("extraArgs", n.ExtraArgs)
			set("size", n.Size)
		}
	}
	return b.String()
}
