package provision

import (
	"context"
	"fmt"
	"io"

	"github.com/charmbracelet/log"

	"github.com/fleetnix/fleet/remote"
)

// install runs nixos-install on the staged flake, with the staged secrets
// as the secrets input, streaming its output as info logs.
func (in *run) install(ctx context.Context) error {
	o := in.o
	args := []string{"nixos-install", "--root", o.Root, "--flake", in.flakeDest() + "#" + o.Spec.Name, "--no-root-passwd", "--no-channel-copy"}
	if in.staged != "" {
		args = append(args, "--override-input", o.Spec.SecretsInput, "path:"+in.staged)
	}
	args = append(args, o.InstallArgs...)
	out := remote.NewLineLogger(ctx, o.Log, in.r.Host(), log.InfoLevel)
	defer out.Flush()
	tail := &tailBuffer{max: 16 << 10}
	// nixos-install reports progress on stderr: merge it into the stream.
	cmd := remote.Cmd{Args: append([]string{"sh", "-c", `exec "$@" 2>&1`, "nixos-install"}, args...), Stdout: io.MultiWriter(out, tail), Label: remote.ShellJoin(args)}
	if _, err := in.r.Run(ctx, cmd); err != nil {
		if ee, ok := err.(*remote.ExitError); ok && len(ee.Stderr) == 0 {
			ee.Stderr = remote.Tail(tail.b, 8)
		}
		return fmt.Errorf("nixos-install: %w", err)
	}
	in.changed = true
	return nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	b   []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}
