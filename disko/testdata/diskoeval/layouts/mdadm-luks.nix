# LUKS on an md mirror, LVM inside the LUKS.
{
  disko.devices = {
    disk = {
      a = { type = "disk"; device = "/dev/sda"; content = { type = "gpt"; partitions = {
        esp = { size = "256M"; type = "EF00"; content = { type = "filesystem"; format = "vfat"; mountpoint = "/boot"; }; };
        r = { size = "100%"; content = { type = "mdraid"; name = "mirror"; }; };
      }; }; };
      b = { type = "disk"; device = "/dev/sdb"; content = { type = "gpt"; partitions = {
        r = { size = "100%"; content = { type = "mdraid"; name = "mirror"; }; };
      }; }; };
    };
    mdadm.mirror = {
      type = "mdadm";
      level = 1;
      content = {
        type = "luks";
        name = "vault";
        passwordFile = "/run/pass";
        content = { type = "lvm_pv"; vg = "inner"; };
      };
    };
    lvm_vg.inner = {
      type = "lvm_vg";
      lvs.root = { size = "100%FREE"; content = { type = "filesystem"; format = "ext4"; mountpoint = "/"; }; };
    };
  };
}
