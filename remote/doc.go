// Package remote is fleet's SSH client and the one place external commands
// run through.
//
// A [Target] names a machine (user@host:port, ssh://..., or a ~/.ssh/config
// alias); [Dial] opens one verified [Client] to it, with the host key
// checked against known_hosts or a pinned fingerprint ([HostKeyPolicy]),
// authenticated with the operator's agent and identity files and, when the
// host refuses them and wants one, a password ([Auth].Password: the NixOS
// installer's nixos user). A Client is used for the whole boot of the
// target: commands, uploads and forwarded agents are sessions multiplexed
// over that one connection. When the login user is not root, every command
// runs through `sudo -n` ([Options].NoSudo turns that off).
//
// Every external command fleet runs, on a target or on this machine, goes
// through the [Runner] interface: [Client] runs over SSH, [Local] runs here.
// What a command prints is bounded: stdout is kept up to [Cmd].MaxStdout
// ([ErrOutputTooLarge] past it), stderr streams to the debug log and keeps
// a tail. A failed command is an [*ExitError] carrying the exit status and
// the last lines of its stderr. Every byte from a remote that fleet shows
// goes through [Escape].
package remote
