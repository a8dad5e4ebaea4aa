// Package disko turns a disko disk layout (disko's JSON, in the raw user
// form or the evaluated config.disko.devices form) into real, verified block
// devices, with the same result as disko's own scripts.
//
// The model has three layers. [Parse] reads the JSON into a typed tree of
// [Node]s and fills in disko's defaults exactly as disko does (partition
// priority and numbering, labels with the 36-character sha256 rule, device
// paths, LV order), validating every value a command will get before any
// disk is touched. [BuildPlan] turns the tree into an ordered list of
// [Step]s for a [Mode] (destroy, format, mount, unmount), devices in
// disko's dependency order; each step carries a typed [Action] with its
// own check, act and verify, and its exact commands. [Apply] runs a plan
// through a remote.Runner: it checks the installer's tools ([QueryTools])
// and each disk (not in use, big enough) before any destructive step,
// reuses what already matches in the non-destructive format mode, probes
// instead of relying on udev, and verifies every step's result (sgdisk,
// blkid, sysfs, /proc/self/mountinfo) the way Ignition does. A step that
// fails anyway names what is on the disks at that moment ([StepError]).
//
// What disko does that fleet does the same way: gpt and legacy msdos/gpt
// tables, the hybrid MBR, filesystems (ext2/3/4, vfat, xfs, btrfs, f2fs,
// exfat), btrfs subvolumes and swapfiles, swap (randomEncryption left raw),
// LUKS, LVM (linear, raid, thin pools), mdadm (partitioned arrays
// included), ZFS (pools in every mode and topology, filesystems, volumes,
// encryption with the key on stdin; see action_zfs.go), nodev mounts,
// destroy = false, and the create hooks. Mount and unmount hooks and
// bcachefs are refused by name ([ErrUnsupported]) before anything runs,
// never skipped: a layout is never half-applied for want of a feature.
package disko

// Node is one node of the layout: a top-level device (disk, mdadm, lvm_vg,
// nodev, zpool), a content node (gpt, table, filesystem, btrfs, swap, luks,
// lvm_pv, mdraid, zfs) or a ZFS dataset (zfs_fs, zfs_volume). Only the
// fields of its Type are set.
type Node struct {
	Type string // disk, gpt, table, filesystem, btrfs, swap, luks, lvm_pv, lvm_vg, mdraid, mdadm, nodev, zfs, zpool, zfs_fs, zfs_volume
	// Name is disko's name: a disk's, md array's, volume group's or
	// pool's name option (by default its attr name, "/" made "_"), a luks
	// mapper name, a dataset's full name (pool/name).
	Name string
	Key  string // the attr name of a top-level device (disk.KEY)
	Path string // node path in the spec, for errors: disk.main.content.partitions.root
	// Device is disko's device path for this node, as the NixOS config
	// generated from the layout names it: the disk, /dev/disk/by-partlabel/L,
	// /dev/mapper/N, /dev/VG/LV, /dev/md/N. Apply acts on the kernel nodes
	// these resolve to.
	Device string

	Content *Node // disk, partition, luks, lv, mdadm content

	// gpt
	Partitions  []*Partition
	EFIGPTFirst bool // efiGptPartitionFirst: the hybrid MBR's EE entry first
	// table (legacy): format gpt or msdos, partitions in list order
	TableFormat string
	TableParts  []*TablePartition
	// filesystem / btrfs / nodev
	Format       string // mkfs suffix; nodev: fsType
	Mountpoint   string
	MountOptions []string
	// ExtraArgs are the arguments disko adds, as words: mkfs (filesystem,
	// btrfs), mkswap, mdadm --create.
	ExtraArgs  []string
	Subvolumes []*Subvolume
	Swapfiles  []*Swapfile // btrfs: swapfiles at the filesystem's top
	// swap
	DiscardPolicy    string
	RandomEncryption bool // no mkswap: the booted system encrypts it afresh
	// luks
	AllowDiscards      bool
	BypassWorkqueues   bool
	KeyFileSize        *int
	KeyFileOffset      *int
	KeyFile            string // settings.keyFile, a path on the installer (fleet sends --disk-key bytes instead)
	PasswordFile       string
	AdditionalKeyFiles []string
	ExtraFormatArgs    []string
	ExtraOpenArgs      []string
	// lvm_pv: VG; mdraid: Name of the md array (in MD)
	VG string
	MD string
	// lvm_vg
	LVs []*LV
	// mdadm
	Level    int
	Metadata string
	Members  []string // mdadm: member devices (disko's paths), from mdraid nodes
	PVs      []string // lvm_vg: pv devices (disko's paths), from lvm_pv nodes
	// disk
	Destroy bool // false: destroy leaves this disk's contents alone

	// zfs (a pool member), zfs_fs, zfs_volume: the pool's name
	Pool string
	// zpool: its mode, options and members; Datasets in disko's creation
	// order (attr name), the pool's root filesystem among them
	Zpool    *Zpool
	Datasets []*Node
	// zfs_fs, zfs_volume: the zfs create -o properties; Size: a volume's -V
	Options map[string]string
	Size    string
	// PoolRoot marks the dataset that stands for a pool's root filesystem
	// (disko's __root): not created, its properties are the pool's
	// rootFsOptions and its mountpoint the pool's.
	PoolRoot bool

	// Shell commands disko runs (in bash) before this node and its
	// content are created, and after; "" for none.
	PreCreateHook, PostCreateHook string
}

// Partition is one gpt partition with disko's defaults filled in.
type Partition struct {
	Name       string
	Path       string
	Index      int    // 1-based partition number
	Priority   int    // ordering key
	Size       string // "100%", N[KMGTP], or "" when only start/end are given
	Start, End string // sgdisk --new start and end
	TypeCode   string // sgdisk code (8300, ef02) or GUID, as written
	Label      string
	UUID       string
	Attributes []int
	Alignment  int    // sgdisk --set-alignment; 0 for sgdisk's default
	Device     string // disko's device path (/dev/disk/by-partlabel/LABEL)
	Hybrid     *Hybrid
	Content    *Node
}

// Hybrid is a partition's entry in a hybrid MBR.
type Hybrid struct {
	MBRType  string // mbrPartitionType (0x0c), "" for sgdisk's choice
	Bootable bool   // mbrBootableFlag
}

// Bytes is the partition's size in bytes, 0 for "100%" or unknown.
func (p *Partition) Bytes() int64 { b, _ := parseSize(p.Size); return b }

// TablePartition is one partition of a legacy table (parted mkpart).
type TablePartition struct {
	Path     string
	Index    int
	Name     string // gpt tables: the partition name
	PartType string // msdos: primary
	FSType   string // parted's fs-type, "" for none
	Start    string
	End      string
	Flags    []string
	Bootable bool
	Device   string // disko's device path (deviceNumbering)
	Content  *Node
}

// Subvolume is a btrfs subvolume.
type Subvolume struct {
	Name         string
	Mountpoint   string
	MountOptions []string
	ExtraArgs    []string // btrfs subvolume create
	Swapfiles    []*Swapfile
}

// Swapfile is a btrfs swapfile (btrfs filesystem mkswapfile).
type Swapfile struct {
	Path    string // relative to its subvolume (or the filesystem's top)
	Size    string // N[KMGTP]
	Options []string
}

// LV is an lvm logical volume.
type LV struct {
	Name      string
	Path      string
	Size      string // as written: 16G, 1.5T, 100%, 100%FREE, 50%VG
	LVMType   string // "", mirror, raid0..raid6, thin-pool, thinlv
	Pool      string // thinlv: its thin pool's name
	ExtraArgs []string
	Priority  int
	Device    string // /dev/VG/LV
	Content   *Node
}

// Spec is a whole layout.
type Spec struct {
	Disks  []*Node // by attr name
	MDs    []*Node
	VGs    []*Node
	Nodevs []*Node
	Zpools []*Node
}

// Top lists the top-level devices in disko's creation order: the
// attrset order (disk, lvm_vg, mdadm, nodev, zpool) with every device
// after the devices it is built on.
func (s *Spec) Top() []*Node { return deviceOrder(s) }
