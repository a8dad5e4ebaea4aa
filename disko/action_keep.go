package disko

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
)

// keeper is an action with something of its own to do on a kept device:
// keep returns the steps that take its place there (an array assembled
// instead of created, a LUKS device opened without writing its header);
// none drops the step. Every other action on a kept device only checks:
// what it would create must be there already.
type keeper interface {
	keep(st Step) []Step
}

// activator marks the actions that may act on a kept device: they bring
// up what is there (assemble, open, activate, probe) and write nothing.
// undo takes down what act brought up, when a later check refuses.
type activator interface {
	undo(ctx context.Context, a *applier, st *Step) error
}

// keepSteps turns the steps that create a kept top-level device into the
// steps that check it and bring it up.
func keepSteps(steps []Step) []Step {
	var out []Step
	for _, st := range steps {
		if k, ok := st.Action.(keeper); ok {
			out = append(out, k.keep(st)...)
			continue
		}
		out = append(out, st)
	}
	return out
}

// Keep checks a kept top-level device (a disk, an md array, a volume
// group) against the layout and brings it up, writing nothing: every
// step that would create part of it must find that part there (the
// partitions with disko's labels, types and sizes; the filesystem
// types; the md array's members, name and UUID), and the steps that
// assemble, open or activate run when needed. Apply runs every Keep
// before anything else, so a mismatch is refused with no changes made,
// and whatever a Keep brought up is taken down again.
type Keep struct {
	Top   *Node
	Steps []Step
	up    []*Step // the steps that brought something up in this run
}

func (*Keep) Kind() string { return "check" }

func (k *Keep) check(ctx context.Context, a *applier, st *Step) (bool, error) {
	for i := range k.Steps {
		in := &k.Steps[i]
		done, err := in.Action.check(ctx, a, in)
		if err != nil {
			return false, k.refuse(st, err)
		}
		if done {
			continue
		}
		if _, ok := in.Action.(activator); !ok {
			return false, k.refuse(st, fmt.Errorf("%s: %s: %w", in.Node, missing(ctx, a, in), ErrMismatch))
		}
		a.log.Info("bring up kept device", "device", in.Device, "action", in.Kind(), "node", in.Node)
		if err := a.runAction(ctx, in); err != nil {
			return false, fmt.Errorf("%s: %w", in.Node, err)
		}
		k.up = append(k.up, in)
	}
	a.log.Info("kept device matches the layout", "device", topName(k.Top), "path", st.Device)
	return true, nil
}

func (*Keep) act(context.Context, *applier, *Step) error    { return nil }
func (*Keep) verify(context.Context, *applier, *Step) error { return nil }

// refuse names the kept device and what differs. A check's own hint
// stays, but not one to pass --wipe: a kept device is never wiped.
func (k *Keep) refuse(st *Step, err error) error {
	e := &KeptMismatchError{Device: topName(k.Top), Path: st.Device, Err: err}
	var h *hinted
	if errors.As(err, &h) {
		e.Err = h.err
		if !strings.Contains(h.hint, "--wipe") {
			e.Hint = h.hint
		}
	}
	return e
}

// takeDown undoes what this run brought up, last first.
func (k *Keep) takeDown(ctx context.Context, a *applier) {
	for i := len(k.up) - 1; i >= 0; i-- {
		in := k.up[i]
		if err := in.Action.(activator).undo(ctx, a, in); err != nil {
			a.log.Warn("take down kept device", "device", in.Device, "err", err)
		}
	}
	k.up = nil
}

// flatten is steps with each Keep step's own steps in its place, for
// what looks at every command a plan may run (tools, keys).
func flatten(steps []Step) []Step {
	var out []Step
	for _, st := range steps {
		if k, ok := st.Action.(*Keep); ok {
			out = append(out, k.Steps...)
			continue
		}
		out = append(out, st)
	}
	return out
}

// runAction acts and verifies one step.
func (a *applier) runAction(ctx context.Context, st *Step) error {
	if err := st.Action.act(ctx, a, st); err != nil {
		return err
	}
	return st.Action.verify(ctx, a, st)
}

// keepAll runs every Keep step of the plan before anything else: each
// kept device checked and brought up. On a refusal, what was brought up
// is taken down again, and the error says no changes were made.
func (a *applier) keepAll(ctx context.Context, steps []Step) (undo func(), err error) {
	var ks []*Keep
	undo = func() {
		for i := len(ks) - 1; i >= 0; i-- {
			ks[i].takeDown(context.WithoutCancel(ctx), a)
		}
	}
	for i := range steps {
		k, ok := steps[i].Action.(*Keep)
		if !ok {
			continue
		}
		ks = append(ks, k)
		if _, err := k.check(ctx, a, &steps[i]); err != nil {
			undo()
			return nil, refused(err)
		}
	}
	return undo, nil
}

// missing says what a step that only checks would have to create.
func missing(ctx context.Context, a *applier, st *Step) string {
	dev := a.resolve(ctx, st.Device)
	switch act := st.Action.(type) {
	case *GPT:
		if w := act.work; w != nil && w.clear && w.foreign == "" {
			return fmt.Sprintf("%s is blank: blkid finds no partition table, the layout wants gpt", dev)
		} else if w != nil {
			var ps []string
			for _, pt := range w.create {
				ps = append(ps, fmt.Sprintf("%d (%s)", pt.Index, pt.Label))
			}
			return fmt.Sprintf("partitions %s missing on %s", strings.Join(ps, ", "), dev)
		}
	case *Mkfs, *Mkswap, *PVCreate, *LuksFormat:
		if !a.exists(ctx, dev) {
			return fmt.Sprintf("%s is missing, the layout wants %s on it", dev, st.FSType)
		}
		return fmt.Sprintf("%s holds nothing blkid knows, the layout wants %s", dev, st.FSType)
	case *VGCreate:
		return fmt.Sprintf("volume group %s not found", st.Device)
	case *LVCreate:
		return fmt.Sprintf("logical volume %s not found", st.Device)
	case *LuksAddKey:
		return fmt.Sprintf("key file %s does not open %s", st.Cmds[0][3], dev)
	}
	return fmt.Sprintf("%s on %s is not as the layout has it", st.Kind(), dev)
}

// The keep methods of the actions that have one.

func (*Hook) keep(Step) []Step { return nil } // create hooks: nothing is created

func (pr *Probe) keep(st Step) []Step {
	st.Action = &Probe{Parts: pr.Parts, Table: pr.Table, kept: true}
	return []Step{st}
}

func (*Probe) undo(context.Context, *applier, *Step) error { return nil }

// keep: opened without --persistent, which writes the LUKS2 header.
func (*LuksOpen) keep(st Step) []Step {
	st.Cmds = [][]string{slices.DeleteFunc(slices.Clone(st.Cmds[0]), func(s string) bool { return s == "--persistent" })}
	return []Step{st}
}

func (*LuksOpen) undo(ctx context.Context, a *applier, st *Step) error {
	return a.run(ctx, &Step{}, []string{"cryptsetup", "close", path.Base(st.Device)})
}

// keep: the group must exist with the layout's PVs; then it is
// activated, so the checks of what its LVs hold can see them.
func (*VGCreate) keep(st Step) []Step {
	on := st
	on.Action, on.Cmds = &VGChange{Active: true, kept: true}, [][]string{{"vgchange", "-a", "y", st.Device}}
	return []Step{st, on}
}

func (*VGChange) undo(ctx context.Context, a *applier, st *Step) error {
	return a.run(ctx, &Step{}, []string{"vgchange", "-a", "n", st.Device})
}

func (m *MDCreate) keep(st Step) []Step {
	st.Action = &MDKeep{Name: m.Name, Level: m.Level, Metadata: m.Metadata, Members: m.Members}
	st.Cmds = [][]string{append([]string{"mdadm", "--assemble", st.Device}, m.Members...)}
	return []Step{st}
}

// MDKeep assembles a kept md array, after checking its members against
// the layout: each member has an md superblock of the layout's array
// (its name, level, metadata and number of devices), all of one array
// UUID. An array that runs already (udev assembles arrays at boot, as the
// NixOS ISO does) is accepted when it is that array: same UUID, running
// on exactly the layout's members.
type MDKeep struct {
	Name     string
	Level    int
	Metadata string
	Members  []string // disko's member paths
	UUID     string   // the array UUID the members carry, once checked
}

func (*MDKeep) Kind() string { return "mdassemble" }

// mdExport reads mdadm's KEY=VALUE output; nil when mdadm finds no array.
func mdExport(ctx context.Context, a *applier, args ...string) map[string]string {
	out, err := a.out(ctx, append([]string{"mdadm"}, args...)...)
	if err != nil {
		return nil
	}
	kv := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), "="); ok {
			kv[k] = v
		}
	}
	return kv
}

// shortMDName is an array name without its host: any:data -> data.
func shortMDName(n string) string {
	if _, s, ok := strings.Cut(n, ":"); ok {
		return s
	}
	return n
}

// sysList lists a sysfs directory of block devices (holders, slaves).
func (a *applier) sysList(ctx context.Context, dev, dir string) []string {
	out, _ := a.out(ctx, "sh", "-c", `for x in /sys/class/block/"$1"/"$2"/*; do [ -e "$x" ] && echo "${x##*/}"; done; true`, "fleet-sys", path.Base(dev), dir)
	return strings.Fields(string(out))
}

func (m *MDKeep) check(ctx context.Context, a *applier, st *Step) (done bool, err error) {
	defer func() { err = atNode(st.Node, err) }()
	var nodes []string // the members' kernel names
	for _, mem := range m.Members {
		node := a.kernelNode(ctx, mem)
		if !a.exists(ctx, node) {
			return false, fmt.Errorf("member %s of array %s is missing: %w", mem, m.Name, ErrMismatch)
		}
		ex := mdExport(ctx, a, "--examine", "--export", node)
		if ex["MD_UUID"] == "" {
			t, _ := a.blkType(ctx, node, false)
			if t == "" {
				t = "nothing blkid knows"
			}
			return false, fmt.Errorf("%s holds %s, the layout wants a member of md array %q: %w", node, t, m.Name, ErrMismatch)
		}
		var diffs []string
		if name := shortMDName(ex["MD_NAME"]); name != m.Name {
			diffs = append(diffs, fmt.Sprintf("array name %q, want %q", ex["MD_NAME"], m.Name))
		}
		if l := ex["MD_LEVEL"]; l != "raid"+strconv.Itoa(m.Level) {
			diffs = append(diffs, fmt.Sprintf("level %s, want raid%d", l, m.Level))
		}
		if n := ex["MD_DEVICES"]; n != strconv.Itoa(len(m.Members)) {
			diffs = append(diffs, fmt.Sprintf("%s devices, want %d", n, len(m.Members)))
		}
		if md := ex["MD_METADATA"]; m.Metadata != "default" && md != "" && md != m.Metadata && md != m.Metadata+".0" {
			diffs = append(diffs, fmt.Sprintf("metadata %s, want %s", md, m.Metadata))
		}
		if len(diffs) > 0 {
			return false, fmt.Errorf("%s is a member of md array %s with %s: %w", node, ex["MD_UUID"], strings.Join(diffs, ", "), ErrMismatch)
		}
		if m.UUID == "" {
			m.UUID = ex["MD_UUID"]
		} else if ex["MD_UUID"] != m.UUID {
			return false, fmt.Errorf("%s belongs to md array %s, %s to %s: the members are of two arrays: %w", nodes[0], m.UUID, node, ex["MD_UUID"], ErrMismatch)
		}
		nodes = append(nodes, node)
	}
	// Running already? By name, or holding a member under another name.
	run, err := a.mdByName(ctx, st.Device)
	if err != nil {
		return false, err
	}
	if run != "" {
		run = a.kernelNode(ctx, run)
	}
	for _, n := range nodes {
		for _, h := range a.sysList(ctx, n, "holders") {
			if "/dev/"+h != run {
				return false, withHint(fmt.Errorf("%s is held by %s, not by array %s: %w", n, h, m.Name, ErrMismatch), "stop it first (mdadm --stop /dev/%s)", h)
			}
		}
	}
	if run == "" {
		return false, nil
	}
	if got := mdExport(ctx, a, "--detail", "--export", run)["MD_UUID"]; got != m.UUID {
		return false, fmt.Errorf("array %s runs as %s with UUID %s, its members carry %s: %w", m.Name, run, got, m.UUID, ErrMismatch)
	}
	var want []string
	for _, n := range nodes {
		want = append(want, path.Base(n))
	}
	have := a.sysList(ctx, run, "slaves")
	slices.Sort(want)
	slices.Sort(have)
	if !slices.Equal(have, want) {
		return false, withHint(fmt.Errorf("array %s runs as %s on %s, the layout has %s: %w", m.Name, run, strings.Join(have, ", "), strings.Join(want, ", "), ErrMismatch), "stop it (mdadm --stop %s) so fleet assembles it from the layout's members", run)
	}
	return true, nil
}

// atNode prefixes a mismatch with the node it is about, keeping a hint last.
func atNode(node string, err error) error {
	if err == nil || !errors.Is(err, ErrMismatch) {
		return err
	}
	var h *hinted
	if errors.As(err, &h) && h == err {
		return &hinted{err: fmt.Errorf("%s: %w", node, h.err), hint: h.hint}
	}
	return fmt.Errorf("%s: %w", node, err)
}

func (m *MDKeep) act(ctx context.Context, a *applier, st *Step) error {
	return (&MDAssemble{Name: m.Name}).act(ctx, a, st)
}

func (m *MDKeep) verify(ctx context.Context, a *applier, st *Step) error {
	node, err := a.mdByName(ctx, st.Device)
	if err != nil || node == "" {
		return fmt.Errorf("array %s missing after mdadm --assemble: %w", st.Device, ErrVerify)
	}
	if got := mdExport(ctx, a, "--detail", "--export", node)["MD_UUID"]; got != m.UUID {
		return fmt.Errorf("array %s (%s) has UUID %s after assembling, want %s: %w", st.Device, node, got, m.UUID, ErrVerify)
	}
	return nil
}

func (m *MDKeep) undo(ctx context.Context, a *applier, st *Step) error {
	node, err := a.mdByName(ctx, st.Device)
	if err != nil || node == "" {
		return err
	}
	return a.run(ctx, &Step{}, []string{"mdadm", "--stop", node})
}
