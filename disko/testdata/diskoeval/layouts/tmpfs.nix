# The root on tmpfs, persistent state on disk, and other nodev mounts: an
# explicit mountpoint, one that is not mounted at all.
{
  disko.devices = {
    disk.main = { type = "disk"; device = "/dev/disk/by-path/pci-0000:00:1f.2-ata-1"; content = { type = "gpt"; partitions = {
      boot = { size = "1M"; type = "EF02"; };
      ESP = { size = "512M"; type = "EF00"; content = { type = "filesystem"; format = "vfat"; mountpoint = "/boot"; }; };
      nix = { size = "100%"; content = { type = "filesystem"; format = "ext4"; mountpoint = "/nix"; }; };
    }; }; };
    nodev = {
      "/" = { fsType = "tmpfs"; mountOptions = [ "size=2G" "mode=755" ]; };
      scratch = { fsType = "tmpfs"; mountpoint = "/var/scratch"; mountOptions = [ "size=512M" ]; };
      unused = { fsType = "ramfs"; mountpoint = null; };
    };
  };
}
