# Levels other than 1: a RAID0 asked for explicitly (level = 0) carrying a
# partition table, and a RAID5 made with extra mdadm arguments.
{
  disko.devices = {
    disk = builtins.listToAttrs (map (n: {
      name = "d${n}";
      value = { type = "disk"; device = "/dev/vd${n}"; content = { type = "gpt"; partitions = {
        fast = { size = "256M"; content = { type = "mdraid"; name = "stripe"; }; };
        safe = { size = "100%"; content = { type = "mdraid"; name = "parity"; }; };
      }; }; };
    }) [ "b" "c" "d" ]);
    mdadm = {
      stripe = {
        type = "mdadm";
        level = 0;
        content = { type = "gpt"; partitions = {
          scratch = { size = "100M"; content = { type = "filesystem"; format = "ext4"; mountpoint = "/scratch"; }; };
          cache = { size = "100%"; content = { type = "filesystem"; format = "xfs"; mountpoint = "/cache"; }; };
        }; };
      };
      parity = {
        type = "mdadm";
        level = 5;
        extraArgs = [ "--assume-clean" "--chunk=64" ];
        content = { type = "filesystem"; format = "ext4"; mountpoint = "/"; };
      };
    };
  };
}
