// Package secrets reads and writes agenix-compatible secrets.
//
// The model is agenix's: a rules file (secrets.nix, see [LoadRules]) maps
// each encrypted file, relative to the rules file, to the public keys that
// must be able to read it. Files are age v1 (binary or armored) and are
// interchangeable with the agenix and age CLIs.
//
// What fleet adds on top:
//   - [ReadRecipients] reads who a file is encrypted to from its header,
//     without decrypting: ssh-ed25519 and ssh-rsa stanzas carry a tag derived
//     from the public key ([SSHTag]); X25519 and plugin stanzas only count;
//     grease stanzas (rage and ragenix add one to every file) are ignored
//     ([Want.Mismatch]).
//   - [LoadIdentities] loads SSH keys, age identity files and plugin
//     identities once per run; a passphrase-protected SSH key asks for its
//     passphrase at most once, and only when a file is encrypted to it.
//   - [Rekey] re-encrypts in parallel, only the files whose recipients
//     changed, and makes them durable together: temp files, one flush of
//     the filesystem, renames. A crash leaves every file either old or new,
//     never half-written ([WriteFileAtomic] does the same for one file).
//     ssh-ed25519 is wrapped and unwrapped here, one scalar multiplication
//     per X25519 operation.
//   - Rules entries name files inside the rules file's directory: climbing
//     out, as written ([LoadRules]) or through a symlink ([Rules.FilePath]),
//     is refused.
//   - Writers take the directory's [Lock] (a flock on the directory, no
//     lock file): a second rekey or edit fails at once instead of racing,
//     and the lock holder removes the temp files a killed writer left
//     ([SweepTemps]).
//   - Plaintext that must touch a filesystem goes to a private, locked
//     directory in memory, tmpfs or ramfs ([PrivateTempDir]; on macOS the
//     per-user $TMPDIR, with a warning); directories that killed processes
//     left are swept by the next one.
package secrets
