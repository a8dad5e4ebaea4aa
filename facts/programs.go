package facts

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/fleetnix/fleet/remote"
)

// programsScript prints "+NAME\tPATH" for each argument that is a program
// on PATH and "-NAME" for each that is not. A shell builtin is not a
// program (commands are exec'd, not run by a shell); where command -v
// names an applet rather than a path (busybox), PATH is searched.
const programsScript = `set -f
for p; do
  w=$(command -v "$p" 2>/dev/null) || w=
  case $w in
  /*) ;;
  *) w= o=$IFS; IFS=:
     for d in $PATH; do if [ -f "$d/$p" ] && [ -x "$d/$p" ]; then w=$d/$p; break; fi; done
     IFS=$o ;;
  esac
  if [ -n "$w" ]; then printf '+%s\t%s\n' "$p" "$w"; else printf '%s\n' "-$p"; fi
done`

// programName is what a program's name may be: no path, no option.
var programName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._+-]*$`)

// MissingPrograms asks the machine r runs on which of names it cannot run
// (command -v on its PATH: through sudo, root's), in one command, and
// returns those, in the order given; nil when all are there. For
// preflight: refuse before a disk is touched, naming what is missing.
func MissingPrograms(ctx context.Context, r remote.Runner, names []string) ([]string, error) {
	if len(names) == 0 {
		return nil, nil
	}
	for _, n := range names {
		if len(n) > 255 || !programName.MatchString(n) {
			return nil, fmt.Errorf("check programs: %q is not a program name", n)
		}
	}
	args := append([]string{"sh", "-c", programsScript, "fleet-programs"}, names...)
	res, err := r.Run(ctx, remote.Cmd{Args: args, Label: "check programs " + strings.Join(names, " ")})
	if err != nil {
		return nil, fmt.Errorf("check programs: %w", err)
	}
	found := map[string]bool{}
	answered := map[string]bool{}
	for _, l := range strings.Split(string(res.Stdout), "\n") {
		switch {
		case strings.HasPrefix(l, "+"):
			name, path, ok := strings.Cut(l[1:], "\t")
			if ok && strings.HasPrefix(path, "/") {
				found[name] = true
			}
			answered[name] = true
		case strings.HasPrefix(l, "-"):
			answered[l[1:]] = true
		}
	}
	var missing []string
	for _, n := range names {
		if !answered[n] {
			return nil, fmt.Errorf("check programs on %s: no answer for %s (unexpected output)", r.Host(), n)
		}
		if !found[n] {
			missing = append(missing, n)
		}
	}
	return missing, nil
}
