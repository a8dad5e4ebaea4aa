package disko

import (
	"maps"
	"slices"
)

// This file plans ZFS: a pool's creation with its datasets, and its part
// of the mount and unmount phases, in disko's order.

// poolMember is a pool's member as the plan knows it: disko's device for
// it, the device fleet acts on, and the layout's disk it is on ("" for
// members on md arrays, volume groups...).
type poolMember struct {
	diskoDev, dev, disk string
}

// zpool plans creating pool n: the pool itself (zpool create, or its
// import when it exists), the properties of its root filesystem, then
// each dataset in disko's order, a volume's content right after it; the
// pool's create hooks around all of it, as disko runs them.
func (p *planner) zpool(n *Node) []Step {
	members := p.zfsMembers[n.Name]
	root := poolRoot(n)
	args := []string{"zpool", "create", "-f", n.Name, "-R", p.opt.Root}
	props := createProps(root)
	// The root filesystem's mountpoint is set as it is created (disko
	// passes -m none for canmount=off and sets it right after with
	// zfs set -u, which OpenZFS 2.1 lacks: without -u, setting a
	// mountpoint mounts the filesystem).
	if _, ok := props["mountpoint"]; !ok {
		if root.Mountpoint != "" {
			args = append(args, "-m", root.Mountpoint)
		} else if root.Options["canmount"] == "off" {
			args = append(args, "-m", "none")
		}
	}
	args = append(args, propArgs("-o", n.Zpool.Options)...)
	args = append(args, propArgs("-O", props)...)
	args = append(args, topologyArgs(n, members)...)
	var devs []string
	for _, m := range members {
		devs = append(devs, m.dev)
	}
	create := Step{Phase: PhaseFormat, Action: &ZpoolCreate{Members: devs, Disks: underDisks(p.spec, "zpool."+n.Key)}, Node: n.Path, Device: n.Name, Cmds: [][]string{args}}
	if root.EncryptionRoot() {
		create.KeyName = root.Name
		if l := root.KeyLocation(); l != "prompt" {
			create.Cmds = append(create.Cmds, []string{"zfs", "set", "keylocation=" + l, root.Name})
		}
	}
	body := []Step{create}
	for _, ds := range n.Datasets {
		body = append(body, p.dataset(ds)...)
		if ds.mounted() {
			p.mounts = append(p.mounts, mountEntry{mp: ds.Mountpoint, dev: ds.Name, diskoDev: ds.Name, fstype: "zfs", opts: ds.zfsMountOptions(), node: ds.Path})
			p.unmounts = append(p.unmounts, unmountEntry{ds.Mountpoint, Step{Phase: PhaseUnmount, Action: &Umount{}, Node: ds.Path, Device: ds.Name,
				Mountpoint: p.under(ds.Mountpoint), Cmds: [][]string{{"umount", p.under(ds.Mountpoint)}}}})
		}
	}
	return p.hooked(n, "", "", "", body)
}

// poolRoot is the dataset that stands for pool n's root filesystem.
func poolRoot(n *Node) *Node {
	for _, ds := range n.Datasets {
		if ds.PoolRoot {
			return ds
		}
	}
	return &Node{Type: "zfs_fs", Name: n.Name, Pool: n.Name, PoolRoot: true, Options: map[string]string{}}
}

// createProps are the properties a dataset is created with: the
// layout's, with an encryption root's keylocation made prompt, so that
// zfs reads the key from stdin (never from a file on the installer); the
// layout's keylocation is set right after.
func createProps(ds *Node) map[string]string {
	props := ds.Options
	if !ds.PoolRoot {
		props = ds.zfsProps()
	}
	props = maps.Clone(props)
	if ds.EncryptionRoot() {
		props["keylocation"] = "prompt"
	}
	return props
}

// updateProps are the properties of an existing dataset that disko sets
// again (zfs set): all of the layout's but those zfs sets only at
// creation.
func updateProps(ds *Node) map[string]string {
	props := ds.zfsProps()
	for _, k := range onetimeProps {
		delete(props, k)
	}
	return props
}

// dataset plans creating one dataset (the pool root: setting its
// properties) and a volume's content.
func (p *planner) dataset(ds *Node) []Step {
	act := &ZfsDataset{Update: updateProps(ds), Onetime: map[string]string{}}
	for _, k := range onetimeProps {
		if v, ok := ds.zfsProps()[k]; ok {
			act.Onetime[k] = v
		}
	}
	st := Step{Phase: PhaseFormat, Action: act, Node: ds.Path, Device: ds.Name}
	switch {
	case ds.PoolRoot:
		// Created with the pool: only an existing pool's root gets its
		// properties set, as disko does.
		act.Root = true
		if len(act.Update) == 0 {
			return p.hooked(ds, "", "", "", nil)
		}
		st.Cmds = [][]string{append(append([]string{"zfs", "set"}, propArgs("", act.Update)...), ds.Name)}
	case ds.Type == "zfs_volume":
		act.Volume = ds.Device
		args := append([]string{"zfs", "create", ds.Name}, propArgs("-o", createProps(ds))...)
		st.Cmds = [][]string{append(append(args, "-V", ds.Size), ds.ExtraArgs...)}
	default:
		st.Cmds = [][]string{append([]string{"zfs", "create", "-up", ds.Name}, propArgs("-o", createProps(ds))...)}
	}
	if ds.EncryptionRoot() && !ds.PoolRoot {
		st.KeyName = ds.Name
		if l := ds.KeyLocation(); l != "prompt" {
			st.Cmds = append(st.Cmds, []string{"zfs", "set", "keylocation=" + l, ds.Name})
		}
	}
	body := []Step{st}
	if ds.Type == "zfs_volume" {
		body = append(body, p.node(ds.Content, ds.Device, "", "")...)
	}
	return p.hooked(ds, "", "", "", body)
}

// topologyArgs are zpool create's vdev arguments for pool n, as disko
// writes them: the mode and every member in creation order; or, for a
// topology, each class in turn (data, spare, log, dedup, special, cache),
// its keyword once, its single-device vdevs first (zpool would read a
// device after a mirror as one of its members).
func topologyArgs(n *Node, members []poolMember) []string {
	devOf := map[string]string{}
	for _, m := range members {
		devOf[m.diskoDev] = m.dev
	}
	var args []string
	t := n.Zpool.Topology
	if t == nil {
		if n.Zpool.Mode != "" {
			args = append(args, n.Zpool.Mode)
		}
		for _, m := range members {
			args = append(args, m.dev)
		}
		return args
	}
	for _, c := range t.classes() {
		if len(c.vdevs) == 0 {
			continue
		}
		if c.keyword != "" {
			args = append(args, c.keyword)
		}
		vdevs := slices.Clone(c.vdevs)
		slices.SortStableFunc(vdevs, func(a, b Vdev) int {
			switch {
			case a.Mode == "" && b.Mode != "":
				return -1
			case a.Mode != "" && b.Mode == "":
				return 1
			}
			return 0
		})
		for _, v := range vdevs {
			if v.Mode != "" {
				args = append(args, v.Mode)
			}
			for _, m := range v.Members {
				args = append(args, devOf[topologyDevice(m)])
			}
		}
	}
	return args
}

// zpoolMount emits pool n's part of the mount phase: its import (never
// its creation), then in dataset order each encryption root's key loaded
// from stdin and each volume's devices (a LUKS volume opened...) by devs.
func (p *planner) zpoolMount(n *Node, emit func(Step), devs func(*Node)) {
	var members []string
	for _, m := range p.zfsMembers[n.Name] {
		members = append(members, m.dev)
	}
	emit(Step{Phase: PhaseMount, Action: &ZpoolImport{Members: members}, Node: n.Path, Device: n.Name,
		Cmds: [][]string{{"zpool", "import", "-N", "-f", "-R", p.opt.Root, n.Name}}})
	for _, ds := range n.Datasets {
		if ds.EncryptionRoot() {
			emit(Step{Phase: PhaseMount, Action: &ZfsLoadKey{}, Node: ds.Path, Device: ds.Name, KeyName: ds.Name,
				Cmds: [][]string{{"zfs", "load-key", "-L", "prompt", ds.Name}}})
		}
		if ds.Type == "zfs_volume" {
			devs(ds.Content)
		}
	}
}

// zpoolUnmount emits pool n's part of the unmount phase, after its
// filesystems are unmounted: in dataset order each volume's devices
// closed by devs and each encryption root's key unloaded, then the pool
// exported, so that the installed system imports it at boot (a pool the
// installer left imported is refused there as in use by another system:
// nixos-anywhere#156).
func (p *planner) zpoolUnmount(n *Node, emit func(Step), devs func(*Node)) {
	for _, ds := range n.Datasets {
		if ds.Type == "zfs_volume" {
			devs(ds.Content)
		}
		if ds.EncryptionRoot() {
			emit(Step{Phase: PhaseUnmount, Action: &ZfsUnloadKey{}, Node: ds.Path, Device: ds.Name,
				Cmds: [][]string{{"zfs", "unload-key", ds.Name}}})
		}
	}
	emit(Step{Phase: PhaseUnmount, Action: &ZpoolExport{}, Node: n.Path, Device: n.Name,
		Cmds: [][]string{{"zpool", "export", n.Name}}})
}
