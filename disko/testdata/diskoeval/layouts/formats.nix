# The filesystems fleet makes, with options and arguments, one on a whole
# disk with no partition table.
{
  disko.devices.disk = {
    parts = { type = "disk"; device = "/dev/vdb"; content = { type = "gpt"; partitions = {
      old = { size = "64M"; content = { type = "filesystem"; format = "ext2"; mountpoint = "/old"; }; };
      journal = { size = "64M"; content = { type = "filesystem"; format = "ext3"; mountpoint = "/j"; }; };
      quota = { size = "300M"; content = { type = "filesystem"; format = "xfs"; mountpoint = "/q"; mountOptions = [ "defaults" "pquota" ]; }; };
      flash = { size = "256M"; content = { type = "filesystem"; format = "f2fs"; mountpoint = "/f"; extraArgs = [ "-O" "extra_attr,compression" ]; mountOptions = [ "compress_algorithm=zstd" ]; }; };
      media = { size = "100M"; type = "0700"; content = { type = "filesystem"; format = "exfat"; mountpoint = "/media"; extraArgs = [ "-L" "MEDIA" ]; }; };
      fat = { size = "100%"; content = { type = "filesystem"; format = "vfat"; mountpoint = "/fat"; extraArgs = [ "-F" "32" "-n" "FAT" ]; }; };
    }; }; };
    whole = { type = "disk"; device = "/dev/vdc"; content = { type = "filesystem"; format = "btrfs"; mountpoint = "/whole"; }; };
  };
}
