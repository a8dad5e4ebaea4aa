# Two disks mirrored twice: /boot on an md mirror of metadata 1.0 (firmware
# reads it as plain FAT), the root on a second mirror that carries its own
# partition table; each disk also has a BIOS boot partition.
{
  disko.devices = {
    disk = {
      left = { type = "disk"; device = "/dev/vdb"; content = { type = "gpt"; partitions = {
        grub = { size = "1M"; type = "EF02"; };
        esp = { size = "256M"; type = "EF00"; content = { type = "mdraid"; name = "boot"; }; };
        main = { size = "100%"; content = { type = "mdraid"; name = "sys"; }; };
      }; }; };
      right = { type = "disk"; device = "/dev/vdc"; content = { type = "gpt"; partitions = {
        grub = { size = "1M"; type = "EF02"; };
        esp = { size = "256M"; type = "EF00"; content = { type = "mdraid"; name = "boot"; }; };
        main = { size = "100%"; content = { type = "mdraid"; name = "sys"; }; };
      }; }; };
    };
    mdadm = {
      boot = {
        type = "mdadm";
        level = 1;
        metadata = "1.0";
        content = { type = "filesystem"; format = "vfat"; mountpoint = "/boot"; mountOptions = [ "umask=0077" ]; };
      };
      sys = {
        type = "mdadm";
        level = 1;
        content = { type = "gpt"; partitions = {
          root = { size = "100%"; content = { type = "filesystem"; format = "ext4"; mountpoint = "/"; }; };
        }; };
      };
    };
  };
}
