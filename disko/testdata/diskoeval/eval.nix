# Evaluates one layout with disko's own module system and nixpkgs' lib
# only (no nixpkgs, no store writes): the raw user form fleet reads, the
# evaluated config.disko.devices tree (internal "_" options stripped but
# _index), and disko's _create, _mount and _unmount scripts.
# Run by regen (see regen/main.go), not in CI.
{ disko, nixpkgsLib, layout }:
let
  lib = import (nixpkgsLib + "/lib");
  diskoLib = import (disko + "/lib") { inherit lib; rootMountPoint = "/mnt"; };
  f = import layout;
  cfg = if builtins.isFunction f then f { inherit lib; } else f;
  eval = lib.evalModules {
    modules = [{
      options.disko.devices = lib.mkOption { type = diskoLib.toplevel; };
      config.disko.devices = cfg.disko.devices;
    }];
  };
  d = eval.config.disko.devices;
  strip = v:
    if builtins.isAttrs v then
      lib.mapAttrs (_: strip) (lib.filterAttrs (n: _: n == "_index" || !(lib.hasPrefix "_" n)) v)
    else if builtins.isList v then map strip v
    else v;
in
{
  user = cfg.disko.devices;
  evaluated = strip { inherit (d) disk mdadm lvm_vg nodev zpool bcachefs_filesystems; };
  create = d._create;
  mount = d._mount;
  unmount = d._unmount;
}
