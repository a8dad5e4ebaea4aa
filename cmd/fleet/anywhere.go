package main

import (
	"fmt"
	"strings"

	"github.com/spf13/pflag"
)

// nixos-anywhere's command line, as `fleet install` reads it: every flag
// of nixos-anywhere (src/nixos-anywhere.sh, its showUsage and argument
// loop) has one answer here, which the README's table shows: the same
// meaning, a documented difference, or "not supported" with what to use
// instead (a usage error, exit 2). So a pasted nixos-anywhere command line
// either means what it meant or stops before anything is done.

// The answers.
const (
	anySame        = "same"        // means what it means in nixos-anywhere
	anyDiffers     = "differs"     // accepted; what fleet does differs as the note says
	anyUnsupported = "unsupported" // refused with the note as the hint
)

// anywhereFlag is one nixos-anywhere flag and fleet's answer to it.
type anywhereFlag struct {
	names  []string // its spellings: "-f", "--flake"
	values int      // how many values follow it
	answer string   // anySame, anyDiffers or anyUnsupported
	// to turns the flag and its values into fleet's arguments (nil: they
	// are fleet's own already); an error refuses them.
	to func(values []string) ([]string, error)
	// note says what fleet does with it (the README's table), or, for an
	// unsupported flag, what to use instead.
	note string
}

// anywhereFlags are every flag of nixos-anywhere 1.13's argument loop, in
// its order.
var anywhereFlags = []anywhereFlag{
	{names: []string{"-f", "--flake"}, values: 1, answer: anySame,
		note: "`DIR#HOST`, and `DIR#nixosConfigurations.HOST.config` as nixos-anywhere writes it out"},
	{names: []string{"--target-host"}, values: 1, answer: anySame, note: "the machine to install (fleet's `--target`); the positional `<ssh-host>` too"},
	{names: []string{"-i"}, values: 1, answer: anySame, note: "an SSH private key to log in with (repeatable; the ssh-agent is used too)"},
	{names: []string{"-p", "--ssh-port"}, values: 1, answer: anySame, note: "the SSH port, when the target does not give one"},
	{names: []string{"--ssh-option"}, values: 1, answer: anyUnsupported,
		note: "fleet does not run ssh: put the option in an ssh_config file and pass `--ssh-config FILE` (fleet reads HostName, User, Port, IdentityFile, IdentitiesOnly, UserKnownHostsFile, StrictHostKeyChecking, ProxyJump); host keys: `--host-key`, `--known-hosts`"},
	{names: []string{"-L", "--print-build-logs"}, values: 0, answer: anyDiffers, to: drop,
		note: "nothing to turn on: fleet always logs nixos-install's output (`--log-level` and `--log-format` shape it)"},
	{names: []string{"--env-password"}, values: 0, answer: anySame, note: "the login password is in `$SSHPASS` (read once, then removed from fleet's environment)"},
	{names: []string{"-s", "--store-paths"}, values: 2, answer: anyUnsupported,
		note: "fleet installs from the flake on the installer: use `--flake DIR#HOST`"},
	{names: []string{"--kexec"}, values: 1, answer: anyUnsupported, note: kexecNote},
	{names: []string{"--force-kexec"}, values: 0, answer: anyUnsupported, note: kexecNote},
	{names: []string{"--kexec-extra-flags"}, values: 1, answer: anyUnsupported, note: kexecNote},
	{names: []string{"--ssh-store-setting"}, values: 2, answer: anyUnsupported,
		note: "fleet copies no closure over an SSH store: nixos-install builds on the installer; its nix settings are `--option NAME=VALUE`"},
	{names: []string{"--post-kexec-ssh-port"}, values: 1, answer: anyUnsupported, note: kexecNote},
	{names: []string{"--copy-host-keys"}, values: 0, answer: anyUnsupported,
		note: "the installed system's host key is `--host-identity` when it is an SSH key placed at a host key path (`--identity-dest`), else one fleet makes; fleet pins it at first boot and never copies the installer's keys"},
	{names: []string{"--extra-files"}, values: 1, answer: anySame, note: "a local directory copied onto the new root, owned by root"},
	{names: []string{"--chown"}, values: 2, answer: anySame, to: pairAs("--chown"), note: "`--chown PATH OWNER` (or `PATH=OWNER`): owns PATH under the extra files recursively (symlinks not followed)"},
	{names: []string{"--disk-encryption-keys"}, values: 2, answer: anySame, to: pairAs("--disk-key"),
		note: "REMOTE_PATH is the `passwordFile` or `settings.keyFile` of the layout's LUKS devices that read it (or a LUKS device's name); the key reaches cryptsetup on stdin only, never a file on the installer"},
	{names: []string{"--no-substitute-on-destination"}, values: 0, answer: anyDiffers, to: drop,
		note: "nothing to turn off: fleet copies no closure; nixos-install substitutes as the installer's nix settings (and `--option`) say"},
	{names: []string{"--no-use-machine-substituters"}, values: 0, answer: anyDiffers, to: drop,
		note: "nothing to turn off: fleet never copies the machine's substituters into the installer"},
	{names: []string{"--debug"}, values: 0, answer: anyDiffers, to: func([]string) ([]string, error) { return []string{"--log-level", "debug"}, nil },
		note: "`--log-level debug`: every command fleet runs is logged; no shell trace"},
	{names: []string{"--show-trace"}, values: 0, answer: anyDiffers, to: func([]string) ([]string, error) { return []string{"--option", "show-trace=true"}, nil },
		note: "the nix setting `show-trace = true` for nixos-install (fleet's local `nix eval` is not traced)"},
	{names: []string{"--option"}, values: 2, answer: anyDiffers, to: pairAs("--option"),
		note: "`--option NAME VALUE` (or `NAME=VALUE`): a nix setting for nixos-install, passed in `NIX_CONFIG`, off command lines, redacted from logs; fleet's local `nix eval` does not get it"},
	{names: []string{"--from"}, values: 1, answer: anyUnsupported, note: "fleet copies no closure: nixos-install builds on the installer from the staged flake"},
	{names: []string{"--build-on-remote"}, values: 0, answer: anySame, to: drop, note: "fleet always builds on the installer"},
	{names: []string{"--vm-test"}, values: 0, answer: anyUnsupported, note: "see what would happen with `fleet install --dry-run` (every step and command) or `fleet disko plan`"},
	{names: []string{"--generate-hardware-config"}, values: 2, answer: anyUnsupported,
		note: "`fleet facts --target T --json` reports the machine; generate hardware-configuration.nix with nixos-generate-config on the installer and commit it before installing"},
	{names: []string{"--phases"}, values: 1, answer: anySame,
		note: "kexec,disko,install,reboot mean what they mean there (kexec: nothing to do on a live installer; install: stage, identity, nixos-install, scan; reboot: reboot and the first-boot check), after preflight; a list with fleet's own phase names is fleet's"},
	{names: []string{"--disko-mode"}, values: 1, answer: anySame, note: "disko, mount or format (fleet's own flag)"},
	{names: []string{"--no-disko-deps"}, values: 0, answer: anyDiffers, to: drop,
		note: "nothing to leave out: fleet uploads no disko script or tools; it runs the installer's own sgdisk, mkfs, cryptsetup..."},
	{names: []string{"--build-on"}, values: 1, answer: anyDiffers, to: buildOn,
		note: "remote and auto: fleet builds on the installer; local is not supported"},
	{names: []string{"-t", "--tty"}, values: 0, answer: anyDiffers, to: drop,
		note: "deprecated there and ignored here (a tty is not needed); `-t` followed by a value is fleet's `--target`"},
	{names: []string{"--stop-after-disko"}, values: 0, answer: anySame, to: func([]string) ([]string, error) { return []string{"--phases", "kexec,disko"}, nil },
		note: "deprecated there: `--phases kexec,disko`"},
	{names: []string{"--no-reboot"}, values: 0, answer: anySame, note: "stop before the reboot (and the first-boot check)"},
	{names: []string{"--help"}, values: 0, answer: anySame, note: "fleet install's help"},
}

const kexecNote = "fleet does not kexec: boot the NixOS installer (the ISO, netboot, or a kexec image) on the target first"

// drop: the flag changes nothing fleet does.
func drop([]string) ([]string, error) { return nil, nil }

// pairAs turns nixos-anywhere's two values (--chown PATH OWNER) into
// fleet's one (--chown PATH=OWNER).
func pairAs(flag string) func([]string) ([]string, error) {
	return func(v []string) ([]string, error) { return []string{flag, v[0] + "=" + v[1]}, nil }
}

func buildOn(v []string) ([]string, error) {
	switch v[0] {
	case "remote", "auto":
		return nil, nil
	case "local":
		return nil, usagef("--build-on local: not supported: fleet builds on the installer (nixos-install there), with no closure to copy\nhint: drop --build-on, or pass --build-on remote")
	}
	return nil, usagef("--build-on %q: want auto, local or remote", v[0])
}

// lookupAnywhere finds a nixos-anywhere flag by one of its spellings.
func lookupAnywhere(name string) (anywhereFlag, bool) {
	for _, f := range anywhereFlags {
		for _, n := range f.names {
			if n == name {
				return f, true
			}
		}
	}
	return anywhereFlag{}, false
}

// rewriteAnywhere turns the arguments of `fleet install` written the way
// nixos-anywhere takes them into fleet's own: flags of two values become
// NAME=VALUE, flags with another spelling are respelled, flags that change
// nothing are dropped (said in notes), and unsupported ones are a usage
// error. fs is fleet install's flags: a value of one of them is never
// taken for a flag.
func rewriteAnywhere(args []string, fs *pflag.FlagSet) (out, notes []string, err error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...), notes, nil
		}
		name, inline, hasInline := strings.Cut(a, "=")
		f, ok := lookupAnywhere(name)
		// -t and --option, --chown as fleet writes them (a value with =)
		// are fleet's.
		switch {
		case ok && name == "-t" && !hasInline && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-"):
			ok = false
		case ok && f.values == 2 && fleetFlag(fs, name) != nil && !hasInline &&
			(i+2 >= len(args) || strings.Contains(args[i+1], "=") || strings.HasPrefix(args[i+2], "-")):
			// --option NAME=VALUE, --chown PATH=OWNER: fleet's own form
			// (fleet says what is wrong with a value that is neither).
			ok = false
		}
		if !ok {
			out = append(out, a)
			if fl := fleetFlag(fs, name); fl != nil && !hasInline && fl.NoOptDefVal == "" && i+1 < len(args) {
				out = append(out, args[i+1]) // its value, whatever it looks like
				i++
			}
			continue
		}
		var vals []string
		if hasInline {
			vals = append(vals, inline)
		}
		for len(vals) < f.values && i+1 < len(args) {
			i++
			vals = append(vals, args[i])
		}
		if len(vals) != f.values {
			return nil, nil, usagef("%s takes %d values, as nixos-anywhere's does; %d given", name, f.values, len(vals))
		}
		if f.answer == anyUnsupported {
			return nil, nil, usagef("%s: not supported\nhint: %s", name, plainNote(f.note))
		}
		if f.to == nil {
			// Fleet's own flag, spelled the same: as it was given.
			out = append(out, a)
			if !hasInline {
				out = append(out, vals...)
			}
			continue
		}
		more, err := f.to(vals)
		if err != nil {
			return nil, nil, err
		}
		if len(more) == 0 {
			notes = append(notes, fmt.Sprintf("%s: %s", name, plainNote(f.note)))
		}
		out = append(out, more...)
	}
	return out, notes, nil
}

// fleetFlag is fleet install's flag spelled a ("--name" or "-n"), or nil.
func fleetFlag(fs *pflag.FlagSet, a string) *pflag.Flag {
	switch {
	case strings.HasPrefix(a, "--"):
		return fs.Lookup(a[2:])
	case strings.HasPrefix(a, "-") && len(a) == 2:
		return fs.ShorthandLookup(a[1:])
	}
	return nil
}

// plainNote is a note without its Markdown backquotes, for the terminal.
func plainNote(s string) string { return strings.ReplaceAll(s, "`", "") }

// anywhereTable is the README's table of nixos-anywhere's flags.
func anywhereTable() string {
	var b strings.Builder
	b.WriteString("| nixos-anywhere | fleet install | what fleet does |\n|---|---|---|\n")
	answers := map[string]string{anySame: "same meaning", anyDiffers: "differs", anyUnsupported: "not supported (exit 2)"}
	for _, f := range anywhereFlags {
		name := "`" + strings.Join(f.names, "`, `") + "`"
		fmt.Fprintf(&b, "| %s | %s | %s |\n", name, answers[f.answer], f.note)
	}
	return b.String()
}
