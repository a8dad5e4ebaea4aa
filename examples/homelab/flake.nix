{
  description = "homelab: an example fleet for fleet (evaluable without nixpkgs)";

  # The hosts keep their agenix .age files in the three places agenix
  # users keep them, and fleet finds each from the store path Nix gives it:
  # - nas: a private repository, the input named `secrets`;
  # - router: another private repository, an input named `agenix-secrets`;
  # - vault: the flake's own secrets/ directory.
  # fleet's installer fetches an input through a scoped forwarded agent;
  # the flake's own files come with the flake. The rig's set-up
  # (test/homelab) points these URLs at its private git server and writes
  # flake.lock; for your own fleet, put your repositories here and run
  # `nix flake lock`.
  inputs.secrets = {
    url = "git+ssh://git@secrets.homelab.invalid/secrets.git";
    flake = false;
  };
  inputs.agenix-secrets = {
    url = "git+ssh://git@secrets.homelab.invalid/agenix-secrets.git";
    flake = false;
  };

  # Each host is a module-shaped attribute set under .config, as
  # nixosSystem would give, so fleet (and the rig's stand-in nixos-install)
  # evaluate it with a real Nix and without nixpkgs. In a real fleet these
  # come from nixpkgs.lib.nixosSystem with disko's and agenix's modules.
  outputs = { self, secrets, agenix-secrets }: {
    nixosConfigurations = {
      nas.config = import ./hosts/nas.nix { inherit secrets; };
      router.config = import ./hosts/router.nix { inherit agenix-secrets; };
      vault.config = import ./hosts/vault.nix { };
      tank.config = import ./hosts/tank.nix { inherit secrets; };
      pi.config = import ./hosts/pi.nix { inherit secrets; };
    };
  };
}
