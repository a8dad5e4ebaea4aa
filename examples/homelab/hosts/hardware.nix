# A host's hardware configuration, hosts/HOST-hardware.nix, when there is
# one: what `fleet install HOST --generate-hardware-config
# nixos-generate-config hosts/HOST-hardware.nix` (or nixos-generate-config
# itself) writes, a NixOS module. In a real fleet nixosSystem imports it
# (modules = [ ./hosts/nas-hardware.nix ... ]); these hosts are plain
# attribute sets evaluated without nixpkgs, so this applies it by hand:
# called with a small stand-in for nixpkgs' lib, its settings merged
# under the host's own (lib.mkDefault: the host's win), its imports (the
# nixpkgs profiles it names) left out.
path: config:
let
  lib = {
    mkDefault = v: v;
    mkForce = v: v;
    mkIf = cond: v: if cond then v else { };
  };
  hw =
    if builtins.pathExists path
    then removeAttrs (import path { inherit lib config; pkgs = { }; modulesPath = "/nixpkgs/nixos/modules"; }) [ "imports" ]
    else { };
  merge = low: high: low // builtins.mapAttrs
    (n: v: if builtins.isAttrs v && builtins.isAttrs (low.${n} or null) then merge low.${n} v else v)
    high;
in
merge hw config
