# A thin pool and thin volumes beside a plain LV, on two disks.
{
  disko.devices = {
    disk = {
      a = { type = "disk"; device = "/dev/vdb"; content = { type = "gpt"; partitions = {
        ESP = { size = "128M"; type = "EF00"; content = { type = "filesystem"; format = "vfat"; mountpoint = "/boot"; }; };
        pv = { size = "100%"; content = { type = "lvm_pv"; vg = "tank"; }; };
      }; }; };
      b = { type = "disk"; device = "/dev/vdc"; content = { type = "lvm_pv"; vg = "tank"; }; };
    };
    lvm_vg.tank = {
      type = "lvm_vg";
      lvs = {
        pool = { size = "400M"; lvm_type = "thin-pool"; };
        root = { size = "1G"; lvm_type = "thinlv"; pool = "pool"; content = { type = "filesystem"; format = "ext4"; mountpoint = "/"; }; };
        var = { size = "300M"; lvm_type = "thinlv"; pool = "pool"; content = { type = "filesystem"; format = "xfs"; mountpoint = "/var"; }; };
        plain = { size = "64M"; content = { type = "swap"; }; };
      };
    };
  };
}
