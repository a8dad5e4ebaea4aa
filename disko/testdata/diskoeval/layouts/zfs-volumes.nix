# ZFS: a pool on LUKS, whose root filesystem is encrypted (hex key from a
# file) and mounted on /; volumes (zfs_volume) with content: swap, ext4,
# an LVM physical volume (so the volume group comes after the pool), and
# one without content, with options and extraArgs.
{
  disko.devices = {
    disk.main = {
      type = "disk";
      device = "/dev/vda";
      content = {
        type = "gpt";
        partitions = {
          ESP = { size = "64M"; type = "EF00"; content = { type = "filesystem"; format = "vfat"; mountpoint = "/boot"; }; };
          crypt = { size = "100%"; content = { type = "luks"; name = "cryptzfs"; content = { type = "zfs"; pool = "zroot"; }; }; };
        };
      };
    };
    zpool.zroot = {
      type = "zpool";
      rootFsOptions = { encryption = "aes-256-gcm"; keyformat = "hex"; keylocation = "file:///keys/zroot.hex"; mountpoint = "legacy"; };
      mountpoint = "/";
      datasets = {
        swap = { type = "zfs_volume"; size = "64M"; options = { volblocksize = "4096"; compression = "zle"; }; content = { type = "swap"; }; };
        ext = { type = "zfs_volume"; size = "100M"; extraArgs = [ "-s" ]; content = { type = "filesystem"; format = "ext4"; mountpoint = "/ext"; }; };
        pv = { type = "zfs_volume"; size = "200M"; content = { type = "lvm_pv"; vg = "vg0"; }; };
        raw = { type = "zfs_volume"; size = "10M"; };
      };
    };
    lvm_vg.vg0 = {
      type = "lvm_vg";
      lvs.data = { size = "100%FREE"; content = { type = "filesystem"; format = "ext4"; mountpoint = "/data"; }; };
    };
  };
}
