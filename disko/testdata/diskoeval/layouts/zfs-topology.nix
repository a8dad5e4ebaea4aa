# ZFS: the structured topology: data vdevs (single devices, sorted first,
# and a mirror), a special mirror given as one vdev, dedup, log (a mirror
# and a single device), cache and spare; members named by disk (disko's
# partition "zfs" of that disk) or by full path (a whole-disk member).
let
  part = pool: { type = "gpt"; partitions.zfs = { size = "100%"; content = { type = "zfs"; inherit pool; }; }; };
  disk = dev: { type = "disk"; device = dev; content = part "z"; };
in
{
  disko.devices = {
    disk = {
      a = disk "/dev/vda";
      b = disk "/dev/vdb";
      c = disk "/dev/vdc";
      d = disk "/dev/vdd";
      s1 = disk "/dev/vde";
      s2 = disk "/dev/vdf";
      dd = { type = "disk"; device = "/dev/disk/by-id/virtio-dedup"; content = { type = "zfs"; pool = "z"; }; };
      l1 = disk "/dev/vdh";
      l2 = disk "/dev/vdi";
      l3 = disk "/dev/vdj";
      cache = disk "/dev/vdk";
      spare = disk "/dev/vdl";
    };
    zpool.z = {
      type = "zpool";
      mode.topology = {
        type = "topology";
        vdev = [
          { mode = "mirror"; members = [ "b" "c" ]; }
          { members = [ "a" ]; }
          { members = [ "d" ]; }
        ];
        special = { mode = "mirror"; members = [ "s1" "s2" ]; };
        dedup = [ { members = [ "/dev/disk/by-id/virtio-dedup" ]; } ];
        log = [
          { mode = "mirror"; members = [ "l1" "l2" ]; }
          { members = [ "l3" ]; }
        ];
        cache = [ "cache" ];
        spare = [ "spare" ];
      };
      rootFsOptions.mountpoint = "none";
      datasets.root = { type = "zfs_fs"; mountpoint = "/"; options.mountpoint = "legacy"; };
    };
  };
}
