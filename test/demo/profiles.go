package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/fleetnix/fleet/test/installers"
)

// profile is the demo of installing the example's host on one of the
// installers people boot (test/installers runs it, as the CI tests do):
// the refusals first, then the install and its checks.
func profile(p installers.Profile) func(ctx context.Context, d *demo) error {
	return func(ctx context.Context, d *demo) error {
		start := time.Now()
		if err := d.buildFleet(ctx); err != nil {
			return err
		}
		r := &installers.Run{T: d.t, P: p, Fleet: d.fleet, Say: d.say, Log: os.Stderr}
		err := r.Proof(ctx)
		d.summary = r.Summary
		if err != nil {
			return err
		}
		fmt.Println("    every secret verified at first boot; no key bytes and no fleet files on the installer; its authorized_keys unchanged; one SSH connection per boot")
		d.done(time.Since(start))
		return nil
	}
}
