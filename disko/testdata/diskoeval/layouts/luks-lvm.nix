# LUKS holding LVM: discards, bypassed work queues, a key read from an
# offset, extra format and open arguments, an additional key file; LVs of
# every size form disko takes, names and extra arguments of their own.
{
  disko.devices = {
    disk.main = {
      type = "disk";
      device = "/dev/vdb";
      content = {
        type = "gpt";
        partitions = {
          ESP = { size = "512M"; type = "EF00"; content = { type = "filesystem"; format = "vfat"; mountpoint = "/boot"; }; };
          secret = {
            size = "100%";
            content = {
              type = "luks";
              name = "cryptroot";
              settings = { allowDiscards = true; bypassWorkqueues = true; keyFile = "/run/disk.key"; keyFileSize = 64; keyFileOffset = 16; };
              additionalKeyFiles = [ "/run/recovery.key" ];
              extraFormatArgs = [ "--iter-time 1" "--pbkdf" "argon2id" ];
              extraOpenArgs = [ "--timeout 10" ];
              content = { type = "lvm_pv"; vg = "sys"; };
            };
          };
        };
      };
    };
    lvm_vg.sys = {
      type = "lvm_vg";
      lvs = {
        zz = { size = "8M"; };
        aa = { size = "8M"; };
        root = { size = "100%"; content = { type = "filesystem"; format = "ext4"; mountpoint = "/"; }; };
        home = { size = "20g"; name = "homes"; extraArgs = [ "--wipesignatures y" ]; content = { type = "filesystem"; format = "xfs"; mountpoint = "/home"; }; };
        nix = { size = "1.5G"; priority = 10; content = { type = "filesystem"; format = "ext4"; mountpoint = "/nix"; }; };
        tmp = { size = "10%VG"; content = { type = "filesystem"; format = "ext4"; mountpoint = "/tmp"; }; };
      };
    };
  };
}
