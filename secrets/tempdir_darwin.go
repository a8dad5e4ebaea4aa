package secrets

import "syscall"

// fsType names the filesystem path is on. macOS has no tmpfs or ramfs, so
// it is never in memory here (a RAM disk made with hdiutil is an ordinary
// filesystem on a RAM device, indistinguishable by type).
func fsType(path string) (string, bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return "a filesystem that cannot be examined (" + err.Error() + ")", false
	}
	var b []byte
	for _, c := range st.Fstypename {
		if c == 0 {
			break
		}
		b = append(b, byte(c))
	}
	return string(b), false
}
