//go:build !linux && !darwin

package secrets

// fsType cannot tell a memory filesystem on this system: none is trusted.
func fsType(path string) (string, bool) { return "a filesystem fleet cannot identify here", false }
