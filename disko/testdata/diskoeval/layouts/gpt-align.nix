# Positions: start and end in sectors (disko then aligns to 1 sector), an
# explicit alignment, explicit start and end with units, a partition that
# takes what is left (no size, no end), and one sized from the disk's end.
{
  disko.devices.disk.main = {
    type = "disk";
    device = "/dev/nvme0n1";
    content = {
      type = "gpt";
      partitions = {
        a = { priority = 1; start = "34s"; end = "2047s"; type = "EF02"; };
        b = { priority = 2; start = "1M"; end = "129M"; type = "EF00";
              content = { type = "filesystem"; format = "vfat"; mountpoint = "/boot"; }; };
        c = { priority = 3; size = "1G"; alignment = 8;
              content = { type = "filesystem"; format = "ext4"; mountpoint = "/var"; }; };
        d = { priority = 4; end = "-512M";
              content = { type = "filesystem"; format = "ext4"; mountpoint = "/"; }; };
        e = { priority = 5;
              content = { type = "swap"; }; };
      };
    };
  };
}
