# The rules of the private repository the flake's `agenix-secrets` input
# locks: router's .age files, kept apart from nas's (a repository of its
# own, with its own history). The set-up serves this directory as a git
# repository, with keys.nix made on the spot.
let
  keys = import ./keys.nix;
  router = [ keys.operator keys.router ];
in
{
  "protonvpn-wireguard.age".publicKeys = router;
  "datadog-api-key.age".publicKeys = router;
  # router's own decryption identity, escrowed for the operator only
  # (fleet keys escrow router); fleet install router --host-identity-age
  # hosts/router/host-key.age restores it.
  "hosts/router/host-key.age".publicKeys = [ keys.operator ];
}
