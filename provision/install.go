package provision

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/charmbracelet/log"

	"github.com/fleetnix/fleet/remote"
)

// nixosInstallScript runs nixos-install with its output on stdout and the
// nix settings read from stdin into NIX_CONFIG: they may hold tokens, and
// the environment, unlike the command line, is not on the installer's
// process list (sshd's AcceptEnv would refuse them as an env request).
const nixosInstallScript = `cfg=$(cat)
if [ -n "$cfg" ]; then
  NIX_CONFIG="${NIX_CONFIG:+$NIX_CONFIG
}$cfg"
  export NIX_CONFIG
fi
exec "$@" 2>&1`

// install runs nixos-install on the staged flake, with the staged secrets
// as the secrets input, streaming its output as info logs and its
// progress as steps.
func (in *job) install(ctx context.Context) error {
	o := in.o
	args := []string{"nixos-install", "--root", o.Root, "--flake", in.flakeDest() + "#" + o.Spec.Name, "--no-root-passwd", "--no-channel-copy"}
	if in.staged != "" {
		args = append(args, "--override-input", o.Spec.SecretsInput, "path:"+in.staged)
	}
	label := remote.ShellJoin(args)
	if len(in.nixOpts) > 0 {
		label += " with NIX_CONFIG " + redacted(in.nixOpts)
	}
	logged := remote.NewLineLogger(ctx, o.Log, in.r.Host(), log.InfoLevel)
	defer logged.Flush()
	tail := &tailBuffer{max: 16 << 10}
	out := newRedactor(io.MultiWriter(logged, tail, &nixProgress{step: in.step}), in.nixOpts)
	cmd := remote.Cmd{
		Args:   append([]string{"sh", "-c", nixosInstallScript, "nixos-install"}, args...),
		Stdin:  strings.NewReader(nixConfig(in.nixOpts)),
		Stdout: out,
		Label:  label,
	}
	_, err := in.r.Run(ctx, cmd)
	out.Flush()
	if err != nil {
		// The output went to stdout: the error takes its last lines.
		var ee *remote.ExitError
		if errors.As(err, &ee) && len(ee.Stderr) == 0 {
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

// nixProgress turns nix's output into steps: it announces how many paths
// it will fetch and derivations it will build, then says "copying path"
// and "building" once for each. Other lines are steps of no known count.
type nixProgress struct {
	step        func(done, total int, name string)
	buf         []byte
	done, total int
}

var nixWillDo = regexp.MustCompile(`^these (\d+) (?:derivations will be built|paths will be fetched)`)

func (p *nixProgress) Write(b []byte) (int, error) {
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			break
		}
		p.line(strings.TrimSpace(string(p.buf[:i])))
		p.buf = p.buf[i+1:]
	}
	if len(p.buf) > 64<<10 {
		p.buf = p.buf[:0]
	}
	return len(b), nil
}

func (p *nixProgress) line(l string) {
	if l == "" {
		return
	}
	if m := nixWillDo.FindStringSubmatch(l); m != nil {
		n, _ := strconv.Atoi(m[1])
		p.total += n
		return
	}
	if strings.HasPrefix(l, "copying path ") || strings.HasPrefix(l, "building '") {
		p.done++
	}
	total := p.total
	if total > 0 && p.done > total {
		total = p.done // nix said less than it did
	}
	p.step(p.done, total, l)
}
