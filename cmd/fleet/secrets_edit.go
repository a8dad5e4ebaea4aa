package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/fleetnix/fleet/secrets"
)

func init() { registerSecrets(newSecretsEditCmd) }

func newSecretsEditCmd(a *app) *cobra.Command {
	var (
		f         secretsFlags
		useEditor bool
	)
	cmd := &cobra.Command{
		Use:   "edit FILE",
		Short: "Edit a secret in $EDITOR (or replace it from stdin) and re-encrypt it",
		Long: `Decrypt FILE (a rules entry) with the identities, let $EDITOR change it, and
encrypt it again to the rule's recipients (armored if the rule says armor).
When stdin is not a terminal the new content is read from stdin instead, as
agenix does. A file that does not exist yet starts empty. Unchanged content
is not re-encrypted.

The plaintext only ever lives in a 0700 directory in memory: $XDG_RUNTIME_DIR
or /dev/shm, which must be tmpfs or ramfs (on macOS, which has neither, the
per-user $TMPDIR, with a warning). It is removed on every exit: a failed
editor, Ctrl-C, SIGTERM, SIGHUP (the terminal closed) and SIGQUIT. What a
fleet killed outright left behind is removed by the next edit.
While the edit lasts, the secrets directory is locked: another edit or a
rekey is refused at once instead of overwriting this one.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return editSecret(cmd.Context(), cmd, a, &f, args[0], useEditor)
		},
	}
	f.add(cmd.Flags(), true)
	cmd.Flags().BoolVar(&useEditor, "editor", false, "run $EDITOR even when stdin is not a terminal")
	return cmd
}

func editSecret(ctx context.Context, cmd *cobra.Command, a *app, f *secretsFlags, file string, useEditor bool) error {
	r, err := f.load(cmd, a)
	if err != nil {
		return err
	}
	rule, ok := r.Lookup(file)
	if !ok {
		return fmt.Errorf("%s: %w (%s)\nhint: add an entry \"%s\" = { publicKeys = [ ... ]; }; to the rules file", file, secrets.ErrNoRule, filepath.Clean(r.Path), filepath.ToSlash(filepath.Clean(file)))
	}
	// Locked before the editor opens: a second edit or a rekey is refused
	// now, not after the user typed their change (the last writer would
	// silently win).
	unlock, err := secrets.Lock(r.Dir)
	if err != nil {
		return err
	}
	defer unlock()
	swept, err := secrets.SweepTemps(r)
	if err != nil {
		return fmt.Errorf("remove an interrupted run's temp files: %w", err)
	}
	for _, s := range swept {
		a.log.Info("removed a temp file an interrupted run left (ciphertext)", "file", s)
	}
	path, err := r.FilePath(rule)
	if err != nil {
		return fmt.Errorf("%s: %w; nothing changed", rule.File, err)
	}
	var before []byte
	exists := false
	if _, err := os.Stat(path); err == nil {
		exists = true
		ids, err := f.loadIdentities(a)
		if err != nil {
			return err
		}
		if before, err = secrets.DecryptFile(path, ids); err != nil {
			return fmt.Errorf("decrypt %s: %w", rule.File, err)
		}
		defer clear(before)
	}

	var after []byte
	if in, ok := a.stdin.(*os.File); useEditor || ok && term.IsTerminal(int(in.Fd())) {
		after, err = runEditor(ctx, a, before, filepath.Base(rule.File))
	} else {
		after, err = io.ReadAll(a.stdin)
	}
	if err != nil {
		return err
	}
	defer clear(after)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("edit %s: %w; nothing changed", rule.File, err)
	}
	if exists && bytes.Equal(before, after) {
		fmt.Fprintf(a.stderr, "%s unchanged, skipping re-encryption\n", rule.File)
		return nil
	}
	if !exists && len(after) == 0 {
		fmt.Fprintf(a.stderr, "%s: empty new secret, nothing written\n", rule.File)
		return nil
	}
	ct, err := secrets.Encrypt(after, rule.PublicKeys, rule.Armor)
	if err != nil {
		return fmt.Errorf("encrypt %s: %w; nothing changed", rule.File, err)
	}
	mode := os.FileMode(0o600)
	if st, err := os.Stat(path); err == nil {
		mode = st.Mode().Perm()
	} else if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := secrets.WriteFileAtomic(path, ct, mode); err != nil {
		return fmt.Errorf("write %s: %w; the old file is untouched", rule.File, err)
	}
	fmt.Fprintf(a.stderr, "%s encrypted to %d recipient(s)\n", rule.File, len(rule.PublicKeys))
	return nil
}

// runEditor writes content to a 0600 file in a private directory in
// memory (secrets.PrivateTempDir), runs $EDITOR on it and returns what it
// holds afterwards. The directory is removed before it returns, whatever
// happens: a failed editor, Ctrl-C, SIGTERM, SIGHUP (the terminal went
// away) or SIGQUIT, which stop the editor first. A fleet killed outright
// (SIGKILL) cannot clean up: the next edit removes what it left. The
// editor needs the terminal in the foreground, which remote.Runner (own
// process group, captured stderr) cannot give it, so it is started here
// directly.
func runEditor(ctx context.Context, a *app, content []byte, name string) (_ []byte, err error) {
	editor := os.Getenv("EDITOR")
	if editor == "" {
		editor = "vi"
	}
	// Caught from before the plaintext exists until it is gone: these
	// would otherwise end fleet without its deferred cleanup.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, editSignals...)
	defer signal.Stop(sigs)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case s := <-sigs:
			cancel(interruptedError{s})
		case <-ctx.Done():
		}
	}()

	dir, err := secrets.PrivateTempDir()
	if err != nil {
		return nil, err
	}
	defer dir.Remove()
	for _, s := range dir.Swept {
		a.log.Info("removed the plaintext directory a killed edit left", "dir", s)
	}
	if dir.Warning != "" {
		a.log.Warn(dir.Warning)
	}
	tmp := filepath.Join(dir.Path, name)
	if err := os.WriteFile(tmp, content, 0o600); err != nil {
		return nil, err
	}
	c := exec.CommandContext(ctx, "/bin/sh", "-c", "exec "+editor+` "$1"`, "editor", tmp)
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, a.stderr
	c.Cancel = func() error { return c.Process.Signal(syscall.SIGTERM) }
	c.WaitDelay = 2 * time.Second
	if err := c.Run(); err != nil {
		var ie interruptedError
		if errors.As(context.Cause(ctx), &ie) {
			return nil, fmt.Errorf("%w; nothing changed, the plaintext is removed", ie)
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("editor interrupted: %w; nothing changed", ctx.Err())
		}
		var xe *exec.ExitError
		if errors.As(err, &xe) {
			return nil, fmt.Errorf("editor %q failed (%v); nothing changed\nhint: save and quit normally to keep your changes", editor, xe.ProcessState)
		}
		return nil, fmt.Errorf("run editor %q: %w\nhint: set EDITOR", editor, err)
	}
	if err := context.Cause(ctx); err != nil {
		// A signal as the editor exited: the edit may be incomplete.
		return nil, fmt.Errorf("%w; nothing changed, the plaintext is removed", err)
	}
	return os.ReadFile(tmp)
}

// editSignals stop an edit: each ends the editor, and the plaintext is
// removed before fleet exits.
var editSignals = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT}

// interruptedError is an edit stopped by a signal.
type interruptedError struct{ sig os.Signal }

func (e interruptedError) Error() string {
	name := map[os.Signal]string{syscall.SIGINT: "SIGINT", syscall.SIGTERM: "SIGTERM", syscall.SIGHUP: "SIGHUP", syscall.SIGQUIT: "SIGQUIT"}[e.sig]
	return "interrupted by " + name
}
