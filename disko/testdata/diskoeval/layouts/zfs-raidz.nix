# ZFS: the legacy mode strings, one pool each: "" (a stripe), raidz,
# raidz2 and raidz3, on whole disks (zfs content on the disk itself) and
# partitions; pools without a mountpoint, a pool root mounted at a
# mountpoint, and a dataset named by its name option.
let
  whole = dev: pool: { type = "disk"; device = dev; content = { type = "zfs"; inherit pool; }; };
  part = dev: pool: { type = "disk"; device = dev; content = { type = "gpt"; partitions.zfs = { size = "100%"; content = { type = "zfs"; inherit pool; }; }; }; };
in
{
  disko.devices = {
    disk = {
      s1 = part "/dev/vda" "stripe";
      s2 = part "/dev/vdb" "stripe";
      r1 = whole "/dev/sda" "rz1";
      r2 = whole "/dev/sdb" "rz1";
      r3 = whole "/dev/sdc" "rz1";
      q1 = whole "/dev/sdd" "rz2";
      q2 = whole "/dev/sde" "rz2";
      q3 = whole "/dev/sdf" "rz2";
      q4 = whole "/dev/sdg" "rz2";
      t1 = part "/dev/nvme0n1" "rz3";
      t2 = part "/dev/nvme1n1" "rz3";
      t3 = part "/dev/nvme2n1" "rz3";
      t4 = part "/dev/nvme3n1" "rz3";
      t5 = part "/dev/nvme4n1" "rz3";
    };
    zpool = {
      stripe = { type = "zpool"; mode = ""; mountpoint = "/stripe"; rootFsOptions.atime = "off"; };
      rz1 = { type = "zpool"; mode = "raidz"; datasets.files = { type = "zfs_fs"; name = "shared/files"; mountpoint = "/files"; }; };
      rz2 = { type = "zpool"; mode = "raidz2"; options.cachefile = "none"; };
      rz3 = { type = "zpool"; mode = "raidz3"; mountpoint = "/rz3"; mountOptions = [ "noatime" "nodev" ]; };
    };
  };
}
