# LVM raid and mirror LVs over two disks, with /boot on an md mirror of
# metadata 1.0 beside them.
{
  disko.devices = {
    disk = {
      x = { type = "disk"; device = "/dev/sdc"; content = { type = "gpt"; partitions = {
        boot = { size = "256M"; type = "EF00"; content = { type = "mdraid"; name = "efi"; }; };
        pv = { size = "100%"; content = { type = "lvm_pv"; vg = "vg0"; }; };
      }; }; };
      y = { type = "disk"; device = "/dev/sdd"; content = { type = "gpt"; partitions = {
        boot = { size = "256M"; type = "EF00"; content = { type = "mdraid"; name = "efi"; }; };
        pv = { size = "100%"; content = { type = "lvm_pv"; vg = "vg0"; }; };
      }; }; };
    };
    mdadm.efi = {
      type = "mdadm";
      level = 1;
      metadata = "1.0";
      content = { type = "filesystem"; format = "vfat"; mountpoint = "/boot"; };
    };
    lvm_vg.vg0 = {
      type = "lvm_vg";
      lvs = {
        root = { size = "2G"; lvm_type = "mirror"; content = { type = "filesystem"; format = "ext4"; mountpoint = "/"; }; };
        scratch = { size = "1G"; lvm_type = "raid0"; content = { type = "filesystem"; format = "xfs"; mountpoint = "/scratch"; }; };
      };
    };
  };
}
