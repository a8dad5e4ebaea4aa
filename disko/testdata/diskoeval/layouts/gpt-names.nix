# Names: a disk whose name option is long (labels hashed), a partition
# with its own name and one with its own label, names with spaces and
# punctuation, a lower-case type code, lib.mkDefault values, a second disk
# named after its path that destroy leaves alone.
{ lib, ... }:
{
  disko.devices.disk = {
    data = {
      type = "disk";
      device = "/dev/disk/by-id/wwn-0x5000c500a1b2c3d4";
      name = "archive-disk-in-the-basement-rack";
      content = {
        type = "gpt";
        partitions = {
          one = {
            name = "first";
            size = lib.mkDefault "1G";
            content = { type = "filesystem"; format = "xfs"; mountpoint = "/srv/first"; };
          };
          "with space" = {
            size = "512M";
            content = { type = "filesystem"; format = "ext4"; mountpoint = "/srv/with space"; };
          };
          "odd,name+x" = {
            size = "64M";
            label = "custom-label";
            type = "ef02";
          };
          rest = {
            size = "100%";
            content = { type = "filesystem"; format = lib.mkDefault "ext4"; mountpoint = "/srv/rest"; mountOptions = lib.mkForce [ "noatime" ]; };
          };
        };
      };
    };
    "/dev/vdb" = {
      type = "disk";
      device = "/dev/vdb";
      name = "_dev_vdb";
      destroy = false;
      content = {
        type = "gpt";
        partitions.all = {
          size = "100%";
          content = { type = "filesystem"; format = "ext4"; mountpoint = "/srv/kept"; };
        };
      };
    };
  };
}
