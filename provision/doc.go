// Package provision is fleet's install pipeline: from a host's spec and a
// verified connection to a live installer, through disks, staging, the
// identity, nixos-install, a scan of the installer, the reboot, and the
// first-boot check that every declared secret decrypted.
//
// [Install] takes [Options] (what the operator asked for) and derives the
// rest before it connects (prepare.go): the host's [Spec] (from a JSON
// file or one nix eval of the flake, see [HostSource]), the flake's lock,
// the scoped agent the installer fetches the secrets through, the local
// decryption of every declared secret and the disk layout. Then it runs
// the phases in order, a file each: preflight.go, disko.go, stage.go,
// identity.go, install.go, scan.go, reboot.go, verify.go. Every command
// runs through a remote.Runner; [Options.OnPhase] and [Options.OnStep]
// follow the run. Errors are in errors.go: a failed phase is a
// [*PhaseError], options that are wrong are an [*OptionError].
//
// Where each host's .age files are (the flake itself, or an input of any
// name) is worked out from the store paths the evaluation gives them
// (sources.go); only an input is fetched.
//
// [VerifyHost] is the first-boot check on its own (fleet verify);
// [VerifyFleet] checks every host of a flake at once (fleet verify --all).
package provision
