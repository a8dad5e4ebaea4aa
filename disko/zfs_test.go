package disko

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
)

// zfsNASLayout is a NAS in disko's user form: a system disk, and a pool
// mirrored over two data disks with a dataset and an encryption root.
const zfsNASLayout = `{
 "disk": {
  "main": {"type": "disk", "device": "/dev/vda", "content": {"type": "gpt", "partitions": {
    "root": {"size": "100%", "content": {"type": "filesystem", "format": "ext4", "mountpoint": "/"}}}}},
  "data1": {"type": "disk", "device": "/dev/vdb", "content": {"type": "gpt", "partitions": {
    "zfs": {"size": "100%", "content": {"type": "zfs", "pool": "tank"}}}}},
  "data2": {"type": "disk", "device": "/dev/vdc", "content": {"type": "gpt", "partitions": {
    "zfs": {"size": "100%", "content": {"type": "zfs", "pool": "tank"}}}}}
 },
 "zpool": {"tank": {"type": "zpool", "mode": "mirror", "rootFsOptions": {"mountpoint": "none", "compression": "zstd"},
  "datasets": {
   "data": {"type": "zfs_fs", "mountpoint": "/srv/data"},
   "secret": {"type": "zfs_fs", "mountpoint": "/srv/secret",
     "options": {"encryption": "aes-256-gcm", "keyformat": "passphrase", "keylocation": "file:///run/agenix/tank-key"}}}}}
}`

var nasKey = map[string][]byte{"tank/secret": []byte("correct horse battery staple\n")}

func nasSpec(t *testing.T) *Spec {
	t.Helper()
	s, err := Parse([]byte(zfsNASLayout))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func nasMachine(s *Spec) *dryMachine {
	m := newDryMachine(map[string]int64{"/dev/vda": 8 << 30, "/dev/vdb": 4 << 30, "/dev/vdc": 4 << 30})
	m.zfs.init()
	m.zfs.hostid = 0x8425e349
	return m
}

// keep marks the layout's data disks destroy = false: a reinstall that
// keeps the pool.
func keepData(s *Spec) {
	for _, d := range s.Disks {
		if d.Name != "main" {
			d.Destroy = false
		}
	}
}

func apply(m *dryMachine, s *Spec, mode Mode, keys map[string][]byte, host string) error {
	return Apply(context.Background(), m, s, ApplyOptions{Mode: mode, Yes: true, Keys: keys, HostName: host})
}

// writes are the commands of cmds that change something.
func writes(cmds []string) []string {
	var out []string
	for _, c := range cmds {
		f := strings.Fields(c)
		switch {
		case len(f) > 1 && f[0] == "zpool" && slices.Contains([]string{"create", "destroy", "labelclear", "export"}, f[1]):
		case len(f) > 1 && f[0] == "zpool" && f[1] == "import" && !strings.Contains(c, "readonly=on"):
		case len(f) > 1 && f[0] == "zfs" && slices.Contains([]string{"create", "set"}, f[1]):
		case len(f) > 1 && f[0] == "sgdisk" && f[1] != "-i" && f[1] != "-p":
		case len(f) > 0 && slices.Contains([]string{"wipefs", "mount", "umount"}, f[0]) || strings.HasPrefix(c, "mkfs."):
		default:
			continue
		}
		out = append(out, c)
	}
	return out
}

// refusedUnchanged checks that err is the refusal want (and sentinel),
// and that m ran nothing that changes anything (besides allowed).
func refusedUnchanged(t *testing.T, m *dryMachine, err error, want string, sentinel error, allowed ...string) {
	t.Helper()
	if err == nil || err.Error() != want || !errors.Is(err, sentinel) || !errors.Is(err, ErrRefused) {
		t.Fatalf("got %v\nwant %s", err, want)
	}
	if w := writes(m.cmds); !slices.Equal(w, allowed) {
		t.Errorf("changed something: %q", w)
	}
}

// TestZfsInstall: the install's modes on a dry machine: the pool made
// with its key on stdin and keylocation set after, exported by unmount,
// imported (never created) by mount with the key loaded from stdin.
func TestZfsInstall(t *testing.T) {
	s := nasSpec(t)
	m := nasMachine(s)
	if err := apply(m, s, ModeDestroyFormatMount, nasKey, "nas"); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"zpool create -f tank -R /mnt -O compression=zstd -O mountpoint=none mirror /dev/vdb1 /dev/vdc1",
		"zfs create -up tank/data -o mountpoint=/srv/data",
		"zfs create -up tank/secret -o encryption=aes-256-gcm -o keyformat=passphrase -o keylocation=prompt -o mountpoint=/srv/secret",
		"zfs set keylocation=file:///run/agenix/tank-key tank/secret",
		"mount -t zfs -o defaults,zfsutil -o X-mount.mkdir tank/data /mnt/srv/data",
		"mount -t zfs -o defaults,zfsutil -o X-mount.mkdir tank/secret /mnt/srv/secret",
	}
	got := writes(m.cmds)
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("missing %q in\n%s", w, strings.Join(got, "\n"))
		}
	}
	if ds := m.zfs.datasets["tank/secret"]; ds.key != "correct horse battery staple" || ds.props["keylocation"] != "file:///run/agenix/tank-key" {
		t.Errorf("tank/secret: key %q, keylocation %q", ds.key, ds.props["keylocation"])
	}
	m.cmds = nil
	if err := apply(m, s, ModeUnmount, nil, "nas"); err != nil {
		t.Fatal(err)
	}
	if w := writes(m.cmds); !slices.Equal(w[len(w)-1:], []string{"zpool export tank"}) || m.zfs.pools["tank"].imported {
		t.Fatalf("unmount did not export the pool last:\n%s", strings.Join(w, "\n"))
	}
	m.cmds = nil
	if err := apply(m, s, ModeMount, nasKey, "nas"); err != nil {
		t.Fatal(err)
	}
	for _, c := range m.cmds {
		if strings.HasPrefix(c, "zpool create") || strings.HasPrefix(c, "zfs create") {
			t.Errorf("mount mode created: %s", c)
		}
	}
	guid := m.zfs.pools["tank"].guid
	if !slices.Contains(m.cmds, "zpool import -N -f -R /mnt "+guid) || !slices.Contains(m.cmds, "zfs load-key -L prompt tank/secret") {
		t.Errorf("mount mode did not import by guid and load the key:\n%s", strings.Join(m.cmds, "\n"))
	}
}

// TestZfsKeepPool: a reinstall that keeps the data disks imports the
// pool and its datasets as they are (the system disk is laid out anew),
// and refuses, before anything changes, a wrong key, a pool that is not
// there, and a pool half kept.
func TestZfsKeepPool(t *testing.T) {
	s := nasSpec(t)
	m := nasMachine(s)
	if err := apply(m, s, ModeDestroyFormatMount, nasKey, "nas"); err != nil {
		t.Fatal(err)
	}
	if err := apply(m, s, ModeUnmount, nil, "nas"); err != nil {
		t.Fatal(err)
	}
	guid := m.zfs.pools["tank"].guid
	keepData(s)

	t.Run("wrong key", func(t *testing.T) {
		m.cmds = nil
		err := apply(m, s, ModeDestroyFormatMount, map[string][]byte{"tank/secret": []byte("not the passphrase\n")}, "nas")
		want := "zpool.tank.datasets.secret: the key given for tank/secret does not open it (zfs load-key: Key load error: Incorrect key provided for 'tank/secret'.): wrong key: no changes made\nhint: pass the dataset's key: --disk-key tank/secret=FILE"
		// The only change: the read-only import that tested the key, exported.
		refusedUnchanged(t, m, err, want, ErrWrongKey, "zpool export tank")
		if !slices.Contains(m.cmds, "zpool import -N -f -o readonly=on -R /mnt "+guid) {
			t.Errorf("the key was not tested on a read-only import:\n%s", strings.Join(m.cmds, "\n"))
		}
	})

	t.Run("kept", func(t *testing.T) {
		m.cmds = nil
		if err := apply(m, s, ModeDestroyFormatMount, nasKey, "nas"); err != nil {
			t.Fatal(err)
		}
		for _, c := range writes(m.cmds) {
			if strings.HasPrefix(c, "zpool create") || strings.HasPrefix(c, "zfs create") || strings.Contains(c, "/dev/vdb") || strings.Contains(c, "/dev/vdc") {
				t.Errorf("a kept pool was written: %s", c)
			}
		}
		if !slices.Contains(m.cmds, "zpool import -N -f -R /mnt "+guid) || !slices.Contains(m.cmds, "wipefs --all -f /dev/vda") {
			t.Errorf("want the pool imported and the system disk erased:\n%s", strings.Join(writes(m.cmds), "\n"))
		}
		if err := apply(m, s, ModeUnmount, nil, "nas"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("half kept", func(t *testing.T) {
		s := nasSpec(t)
		s.disk("data1").Destroy = false
		m.cmds = nil
		err := apply(m, s, ModeDestroyFormatMount, nasKey, "nas")
		want := "zpool.tank: pool tank is on disks this run keeps (data1) and disks it erases (data2): existing layout does not match: no changes made\nhint: keep all of the pool's disks, or none"
		refusedUnchanged(t, m, err, want, ErrMismatch)
	})

	t.Run("not there", func(t *testing.T) {
		s := nasSpec(t)
		m := nasMachine(s)
		if err := apply(m, s, ModeDestroyFormatMount, nasKey, "nas"); err != nil {
			t.Fatal(err)
		}
		if err := apply(m, s, ModeUnmount, nil, "nas"); err != nil {
			t.Fatal(err)
		}
		for _, d := range []string{"/dev/vdb1", "/dev/vdc1"} { // partitioned, but no pool
			m.run([]string{"zpool", "labelclear", "-f", d})
		}
		keepData(s)
		m.cmds = nil
		err := apply(m, s, ModeDestroyFormatMount, nasKey, "nas")
		want := "zpool.tank: pool tank is not on its disks (data1, data2), which this run keeps: existing layout does not match: no changes made\nhint: a kept pool is imported, never created: check the --device paths, or let the run erase those disks"
		refusedUnchanged(t, m, err, want, ErrMismatch)
	})
}

// TestZfsForeignPool: a pool the layout does not have, on any of its
// disks, is refused by name before anything changes, in every mode; so
// is a pool another host imported and did not export, unless that host
// is the one being installed (a reinstall), whose pool destroy then
// takes down and clears.
func TestZfsForeignPool(t *testing.T) {
	for _, mode := range []Mode{ModeDestroyFormatMount, ModeFormatMount, ModeMount} {
		s := nasSpec(t)
		m := nasMachine(s)
		m.addForeignPool("intruder", "/dev/vdc", poolExported, 0x1badcafe, "backup")
		err := apply(m, s, mode, nasKey, "nas")
		want := "disk \"data2\" (/dev/vdc): vdc holds zfs pool \"intruder\" (guid 1001), which the layout does not have: zfs pool not in the layout: no changes made\nhint: if this is the wrong disk, point the layout at another with --device; if that pool's data is not wanted, clear it on the installer first: zpool labelclear -f /dev/vdc"
		refusedUnchanged(t, m, err, want, ErrForeignPool)
	}

	s := nasSpec(t)
	m := nasMachine(s)
	m.addForeignPool("tank", "/dev/vdb", poolActive, 0x1badcafe, "oldnas")
	err := apply(m, s, ModeDestroyFormatMount, nasKey, "nas")
	want := "zfs pool \"tank\" on vdb was imported by host \"oldnas\" (hostid 1badcafe) and not exported: it may be in use there: zfs pool in use elsewhere: no changes made\nhint: export it on that host (zpool export tank); if that host is gone for good, import and export it here: zpool import -f -N 1001 && zpool export tank"
	refusedUnchanged(t, m, err, want, ErrPoolInUse)
	// The same pool, last imported by the host being reinstalled: destroy
	// takes it down and clears its label before making the new one.
	m.cmds = nil
	if err := apply(m, s, ModeDestroyFormatMount, nasKey, "oldnas"); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(m.cmds, "zpool labelclear -f /dev/vdb") {
		t.Errorf("destroy did not clear the old pool's label:\n%s", strings.Join(writes(m.cmds), "\n"))
	}
}

func TestZfsKeyChecks(t *testing.T) {
	s := nasSpec(t)
	for _, c := range []struct {
		key  string
		want string
	}{
		{"", "no key for zfs dataset tank/secret: no changes made\nhint: pass --disk-key tank/secret=FILE"},
		{"short\n", "--disk-key tank/secret: a passphrase of 5 bytes: zfs takes 8 to 512 (its first line) (keyformat passphrase): invalid disko spec: no changes made\nhint: give the dataset's key in the form its keyformat says"},
	} {
		m := nasMachine(s)
		err := apply(m, s, ModeDestroyFormatMount, map[string][]byte{"tank/secret": []byte(c.key)}, "nas")
		refusedUnchanged(t, m, err, c.want, ErrRefused)
	}
}

// TestZfsMountRoot: disko's old mountRoot is taken when it is the mount
// root, and refused otherwise, before anything runs.
func TestZfsMountRoot(t *testing.T) {
	s, err := Parse([]byte(zfs2(`"tank":{"type":"zpool","mountRoot":"/mnt"}`)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := BuildPlan(s, ModeDestroyFormatMount, Options{Root: "/mnt"}); err != nil {
		t.Fatal(err)
	}
	_, err = BuildPlan(s, ModeDestroyFormatMount, Options{Root: "/target"})
	want := "zpool.tank.mountRoot: \"/mnt\": the pool is imported under the mount root, /target (disko removed mountRoot in 2023 for the same reason): invalid disko spec\nhint: remove mountRoot, or set the mount root to it (--root)"
	if err == nil || err.Error() != want || !errors.Is(err, ErrSpec) {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}

// TestZfsHookVars: a pool's and a dataset's create hooks see disko's
// variables: the pool's name and options, a dataset's name without its
// pool (disko's example: zfs set keylocation=prompt "zroot/$name").
func TestZfsHookVars(t *testing.T) {
	s, err := Parse([]byte(zfs2(`"tank":{"type":"zpool","options":{"ashift":"12"},"postCreateHook":"zfs snapshot tank@blank",
		"datasets":{"a/b":{"type":"zfs_fs","postCreateHook":"zfs set keylocation=prompt \"tank/$name\""}}}`)))
	if err != nil {
		t.Fatal(err)
	}
	steps, err := BuildPlan(s, Mode{Format: true}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var scripts []string
	for _, st := range steps {
		if _, ok := st.Action.(*Hook); ok {
			scripts = append(scripts, st.Cmds[0][2])
		}
	}
	want := []string{
		"set -efu\ntype=zfs_fs\nname=a/b\ndeclare -A options=()\nmountOptions=(defaults)\nmountpoint=''\nzfs set keylocation=prompt \"tank/$name\"",
		"set -efu\ntype=zpool\nname=tank\nmountpoint=''\nmountOptions=(defaults)\ndeclare -A options=([ashift]=12)\ndeclare -A rootFsOptions=()\nzfs snapshot tank@blank",
	}
	if !slices.Equal(scripts, want) {
		t.Fatalf("hooks:\n%q\nwant\n%q", scripts, want)
	}
}

// TestParseLabels reads the label scan's output: blkid's udev view (a
// pool name escaped as blkid escapes it), the top of zdb -l, a member
// without zdb (state unknown), and the host id.
func TestParseLabels(t *testing.T) {
	out := `dev vdb vdb
blkid ID_FS_TYPE=gpt
dev vdb1 vdb
blkid ID_FS_TYPE=zfs_member
blkid ID_FS_LABEL_ENC=my\x20pool
blkid ID_FS_UUID=5208396384124520917
zdb name: 'my pool'
zdb state: 0
zdb pool_guid: 5208396384124520917
zdb hostid: 2051742765
zdb hostname: 'tank'
dev dm-0 vdc
blkid ID_FS_TYPE=zfs_member
blkid ID_FS_LABEL_ENC=tank
blkid ID_FS_UUID=42
dev vdc1 vdc
blkid ID_FS_TYPE=crypto_LUKS
hostid 2217075529
`
	labels, hostid, err := parseLabels(out)
	if err != nil {
		t.Fatal(err)
	}
	want := []zfsLabel{
		{dev: "vdb1", under: "vdb", pool: "my pool", guid: "5208396384124520917", state: poolActive, hostid: 0x7a4b1c2d, hostname: "tank"},
		{dev: "dm-0", under: "vdc", pool: "tank", guid: "42", state: -1},
	}
	if !slices.Equal(labels, want) || hostid != 0x8425e349 {
		t.Fatalf("labels %+v, hostid %x\nwant %+v, 8425e349", labels, hostid, want)
	}
}
