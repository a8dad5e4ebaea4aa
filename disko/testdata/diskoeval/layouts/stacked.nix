# Devices built on devices of a later kind: an md mirror over two LVs,
# so the volume group is made before the array.
{
  disko.devices = {
    disk = {
      one = { type = "disk"; device = "/dev/vdb"; content = { type = "gpt"; partitions.pv = { size = "100%"; content = { type = "lvm_pv"; vg = "base"; }; }; }; };
      two = { type = "disk"; device = "/dev/vdc"; content = { type = "gpt"; partitions.pv = { size = "100%"; content = { type = "lvm_pv"; vg = "base"; }; }; }; };
    };
    lvm_vg.base = {
      type = "lvm_vg";
      lvs = {
        left = { size = "200M"; content = { type = "mdraid"; name = "over"; }; };
        right = { size = "200M"; content = { type = "mdraid"; name = "over"; }; };
      };
    };
    mdadm.over = {
      type = "mdadm";
      level = 1;
      content = { type = "filesystem"; format = "ext4"; mountpoint = "/srv"; };
    };
  };
}
