# Evaluates one disko example with disko's own module system and nixpkgs'
# lib (no nixpkgs, nothing built), its disks pointed at the rig VM's disks
# in attr-name order (/dev/vda, /dev/vdb, ...). Gives disko's _create and
# _mount script texts and the evaluated config.disko.devices tree with the
# internal "_" options stripped (but _index), the form `fleet disko apply
# --spec` reads. Run by regen.sh at development time, never in CI.
{ disko, nixpkgsLib, example }:
let
  lib = import (nixpkgsLib + "/lib");
  diskoLib = import (disko + "/lib") { inherit lib; rootMountPoint = "/mnt"; };
  devices = {
    options.disko.devices = lib.mkOption { type = diskoLib.toplevel; };
  };
  # An example is an attrset, or a function of lib (and its own defaults).
  f = import example;
  layout = if builtins.isFunction f then f { inherit lib; } else f;
  eval = extra: lib.evalModules { modules = [ devices layout ] ++ extra; };
  names = builtins.attrNames (eval [ ]).config.disko.devices.disk;
  vd = i: "/dev/vd" + builtins.substring i 1 "abcdefghijklmnop";
  pointed = {
    disko.devices.disk = builtins.listToAttrs (lib.imap0 (i: n: {
      name = n;
      value.device = lib.mkForce (vd i);
    }) names);
  };
  d = (eval [ pointed ]).config.disko.devices;
  strip = v:
    if builtins.isAttrs v then
      lib.mapAttrs (_: strip) (lib.filterAttrs (n: _: n == "_index" || !(lib.hasPrefix "_" n)) v)
    else if builtins.isList v then map strip v
    else v;
in
{
  disks = builtins.length names;
  devices = strip { inherit (d) disk mdadm lvm_vg nodev zpool; };
  create = d._create;
  mount = d._mount;
}
