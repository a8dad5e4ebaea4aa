# The flake's own agenix directory: vault's .age files live here, in the
# flake itself (age.secrets.NAME.file = ../secrets/NAME.age), and are
# staged with it; nothing is fetched for vault. The set-up (test/homelab)
# writes keys.nix and the .age files with keys made on the spot.
let
  keys = import ./keys.nix;
  vault = [ keys.operator keys.vault ];
in
{
  "openai-key.age".publicKeys = vault;
  "anthropic-api-key.age".publicKeys = vault;
  # vault's own decryption identity, escrowed for the operator only (fleet
  # keys escrow vault): the escrow lives beside the secrets it unlocks, and
  # a reinstall onto a new system disk restores it (fleet install vault
  # --host-identity-age hosts/vault/host-key.age).
  "hosts/vault/host-key.age".publicKeys = [ keys.operator ];
}
