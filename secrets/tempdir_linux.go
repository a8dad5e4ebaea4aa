package secrets

import (
	"fmt"
	"syscall"
)

// Linux filesystem magic numbers (statfs f_type; see statfs(2)).
const (
	tmpfsMagic = 0x01021994
	ramfsMagic = 0x858458f6
)

var fsNames = map[int64]string{
	tmpfsMagic: "tmpfs", ramfsMagic: "ramfs", 0xEF53: "ext4", 0x9123683E: "btrfs",
	0x58465342: "xfs", 0x794c7630: "overlayfs", 0x6969: "nfs", 0x2fc12fc1: "zfs",
	0x65735546: "fuse", 0x4d44: "vfat", 0x5346544e: "ntfs", 0xF2F52010: "f2fs",
}

// fsType names the filesystem path is on and says whether it keeps its
// files in memory (tmpfs, ramfs).
func fsType(path string) (string, bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return "a filesystem that cannot be examined (" + err.Error() + ")", false
	}
	t := int64(st.Type)
	name, ok := fsNames[t]
	if !ok {
		name = fmt.Sprintf("a filesystem of type %#x", t)
	}
	return name, t == tmpfsMagic || t == ramfsMagic
}
