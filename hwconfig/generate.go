package hwconfig

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/fleetnix/fleet/nixeval"
	"github.com/fleetnix/fleet/remote"
)

// ErrBackend is returned for a backend fleet does not know.
var ErrBackend = errors.New("unknown hardware configuration backend")

// CheckBackend refuses a backend other than [Backends].
func CheckBackend(backend string) error {
	if !slices.Contains(Backends, backend) {
		return fmt.Errorf("%w %q: want %s", ErrBackend, backend, strings.Join(Backends, " or "))
	}
	return nil
}

// Config is a generated hardware configuration.
type Config struct {
	Backend string
	Content []byte
	// Tool reports whether the installer's own tool wrote it; else fleet
	// did, from Hardware.
	Tool bool
	// Hardware is what fleet read of the machine.
	Hardware *Hardware
}

// Source says who wrote the configuration, for logs.
func (c *Config) Source() string {
	if c.Tool {
		return "the installer's " + c.Backend
	}
	return "fleet, from the installer's /sys and /proc (no " + c.Backend + " there)"
}

// Generate makes host's hardware configuration with backend on the
// machine r runs on: with the machine's own tool when it has one (as
// nixos-anywhere runs it), else from [Gather]. Either way the result is
// checked: Nix that parses, or a JSON report.
func Generate(ctx context.Context, r remote.Runner, backend, host string) (*Config, error) {
	if err := CheckBackend(backend); err != nil {
		return nil, err
	}
	hw, err := Gather(ctx, r)
	if err != nil {
		return nil, err
	}
	c := &Config{Backend: backend, Hardware: hw}
	if hw.Has(backend) {
		args := []string{"nixos-generate-config", "--show-hardware-config", "--no-filesystems"}
		if backend == BackendFacter {
			args = []string{"nixos-facter"}
		}
		res, err := r.Run(ctx, remote.Cmd{Args: args, MaxStdout: 16 << 20})
		if err != nil {
			return nil, fmt.Errorf("generate the hardware configuration: %w", err)
		}
		c.Content, c.Tool = res.Stdout, true
	} else if backend == BackendFacter {
		c.Content = Facter(hw)
	} else {
		c.Content = Nix(hw, host)
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	return c, nil
}

// check: a Nix file parses, a report is JSON.
func (c *Config) check() error {
	if c.Backend == BackendFacter {
		if !json.Valid(c.Content) {
			return fmt.Errorf("%s wrote a report that is not JSON", c.Source())
		}
		return nil
	}
	if _, err := nixeval.Parse("hardware-configuration.nix", "/", string(c.Content)); err != nil {
		return fmt.Errorf("%s wrote a file that is not valid Nix: %w", c.Source(), err)
	}
	return nil
}
