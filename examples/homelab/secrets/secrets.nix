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
}
