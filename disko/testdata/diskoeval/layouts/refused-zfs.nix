# ZFS: refused by name before anything runs.
{
  disko.devices = {
    disk.main = { type = "disk"; device = "/dev/vda"; content = { type = "gpt"; partitions.z = { size = "100%"; content = { type = "zfs"; pool = "tank"; }; }; }; };
    zpool.tank = { type = "zpool"; rootFsOptions.compression = "zstd"; mountpoint = "/"; };
  };
}
