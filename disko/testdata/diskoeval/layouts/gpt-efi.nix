# EFI and BIOS boot on one disk: a BIOS boot partition with an attribute,
# an ESP, swap, a partition left unformatted, a fixed UUID, and a root
# that ends 2 GiB before the disk does.
{
  disko.devices.disk.sys = {
    type = "disk";
    device = "/dev/vda";
    content = {
      type = "gpt";
      partitions = {
        bios = { size = "1M"; type = "EF02"; attributes = [ 2 ]; };
        efi = {
          size = "256M";
          type = "EF00";
          content = { type = "filesystem"; format = "vfat"; mountpoint = "/efi"; mountOptions = [ "umask=0077" "noatime" ]; };
        };
        spare = { size = "2G"; uuid = "4f0e1d2c-3b4a-4958-8a7b-6c5d4e3f2a1b"; };
        root = {
          end = "-2G";
          content = { type = "filesystem"; format = "ext4"; mountpoint = "/"; extraArgs = [ "-L" "nixos" ]; };
        };
        swap = {
          size = "100%";
          content = { type = "swap"; };
        };
      };
    };
  };
}
