package flake

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/fleetnix/fleet/test/nixtest"
)

// TestStorePathsMatchNix: the store path of a locked git input (from its
// narHash alone) and of a file copied into the store by interpolation
// are the ones the real nix gives them.
func TestStorePathsMatchNix(t *testing.T) {
	sec := nixtest.Repo(t, map[string]string{"x.age": "age\x00bytes", "hosts/nas/smb.age": "smb"})
	fl := t.TempDir()
	os.WriteFile(filepath.Join(fl, "flake.nix"), []byte(`{
  inputs.agenix-secrets = { url = "git+file://`+sec+`"; flake = false; };
  outputs = { self, agenix-secrets }: { input = "${agenix-secrets}"; copy = "${./wg0.age}"; };
}`), 0o644)
	os.WriteFile(filepath.Join(fl, "wg0.age"), []byte("wireguard ciphertext\n"), 0o644)
	st := nixtest.NewStore(t)
	st.Nix(fl, "flake", "lock", fl)
	lock, err := ReadLock(filepath.Join(fl, "flake.lock"))
	if err != nil {
		t.Fatal(err)
	}
	in, err := lock.Input("agenix-secrets")
	if err != nil {
		t.Fatal(err)
	}
	got, err := SourcePath(in.Locked.NarHash)
	if err != nil {
		t.Fatal(err)
	}
	if want := st.Nix(fl, "eval", "--raw", fl+"#input"); got != want {
		t.Errorf("SourcePath(%s) = %s, nix says %s", in.Locked.NarHash, got, want)
	}
	got, err = FilePath(filepath.Join(fl, "wg0.age"), "wg0.age")
	if err != nil {
		t.Fatal(err)
	}
	if want := st.Nix(fl, "eval", "--raw", fl+"#copy"); got != want {
		t.Errorf("FilePath = %s, nix says %s", got, want)
	}
}

func TestSplitStorePath(t *testing.T) {
	for _, tc := range []struct {
		in, sp, rel string
		ok          bool
	}{
		{"/nix/store/0c0hzfyqpw5mj8vamb4g6qrimh6rngyr-source/hosts/a.age", "/nix/store/0c0hzfyqpw5mj8vamb4g6qrimh6rngyr-source", "hosts/a.age", true},
		{"/nix/store/0c0hzfyqpw5mj8vamb4g6qrimh6rngyr-wg0.age", "/nix/store/0c0hzfyqpw5mj8vamb4g6qrimh6rngyr-wg0.age", "", true},
		// A chroot store's directory in front (nix --store DIR).
		{"/tmp/s/nix/store/0c0hzfyqpw5mj8vamb4g6qrimh6rngyr-source/a.age", "/nix/store/0c0hzfyqpw5mj8vamb4g6qrimh6rngyr-source", "a.age", true},
		{"hosts/a.age", "", "", false},
		{"/nix/store/tooshort-source/a.age", "", "", false},
		{"/nix/store/0c0hzfyqpw5mj8vamb4g6qrimh6rngye-source/a.age", "", "", false}, // e is not in Nix's base32
	} {
		sp, rel, ok := SplitStorePath(tc.in)
		if sp != tc.sp || rel != tc.rel || ok != tc.ok {
			t.Errorf("SplitStorePath(%q) = %q %q %v", tc.in, sp, rel, ok)
		}
	}
}
