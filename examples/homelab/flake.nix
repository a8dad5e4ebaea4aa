{
  description = "homelab: an example fleet for fleet (evaluable without nixpkgs)";

  # The private secrets repository: agenix .age files and their secrets.nix.
  # fleet's installer fetches it through a scoped forwarded agent; nothing
  # else needs access. The rig's set-up (test/homelab) points this URL at
  # its private git server and writes flake.lock; for your own fleet, put
  # your repository here and run `nix flake lock`.
  inputs.secrets = {
    url = "git+ssh://git@secrets.homelab.invalid/secrets.git";
    flake = false;
  };

  # Each host is a module-shaped attribute set under .config, as
  # nixosSystem would give, so fleet (and the rig's stand-in nixos-install)
  # evaluate it with a real Nix and without nixpkgs. In a real fleet these
  # come from nixpkgs.lib.nixosSystem with disko's and agenix's modules.
  outputs = { self, secrets }: {
    nixosConfigurations = {
      nas.config = import ./hosts/nas.nix { inherit secrets; };
      router.config = import ./hosts/router.nix { inherit secrets; };
      vault.config = import ./hosts/vault.nix { inherit secrets; };
      tank.config = import ./hosts/tank.nix { inherit secrets; };
    };
  };
}
