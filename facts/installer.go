package facts

import (
	"fmt"
	"slices"
)

// rootMount is what is mounted at / (the topmost mount there).
type rootMount struct {
	fstype, source string
}

// liveRootFS are the filesystems a live system runs from: RAM, or RAM over
// read-only media.
var liveRootFS = []string{"overlay", "tmpfs", "ramfs", "rootfs"}

// installer decides whether f is a NixOS installer, and says which check
// decided it. A NixOS system is one when its os-release says
// VARIANT_ID=installer (the ISO, the netboot and kexec images), or when it
// runs from a live root: an installer built without the variant (an older
// or a custom image) still has no disk under /.
func installer(f *Facts, variant string, root rootMount) (bool, string) {
	live := slices.Contains(liveRootFS, root.fstype)
	switch {
	case !f.NixOS:
		return false, fmt.Sprintf("it runs %s, not NixOS (no /etc/NIXOS)", orUnknown(f.OSName))
	case variant == "installer":
		return true, "VARIANT_ID=installer in /etc/os-release"
	case live:
		return true, fmt.Sprintf("/ is %s, a live root (no VARIANT_ID=installer in /etc/os-release)", root.fstype)
	}
	v := "has no VARIANT_ID=installer"
	if variant != "" {
		v = fmt.Sprintf("has VARIANT_ID=%s, not installer", variant)
	}
	return false, fmt.Sprintf("its /etc/os-release %s, and / is %s, not a live root (overlay or tmpfs)", v, describeRoot(root))
}

func describeRoot(r rootMount) string {
	switch {
	case r.fstype == "":
		return "of an unknown type"
	case r.source == "" || r.source == "none" || r.source == r.fstype:
		return r.fstype
	}
	return r.fstype + " on " + r.source
}

func orUnknown(s string) string {
	if s == "" {
		return "an unknown OS"
	}
	return s
}
