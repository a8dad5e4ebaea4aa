# btrfs: the top mounted as well as subvolumes, subvolume options and
# extraArgs, a nested subvolume, one left unmounted, swapfiles at the top
# and in a subvolume (one with its own path).
{
  disko.devices.disk.main = {
    type = "disk";
    device = "/dev/sda";
    content = {
      type = "gpt";
      partitions = {
        ESP = {
          size = "300M";
          type = "EF00";
          content = { type = "filesystem"; format = "vfat"; mountpoint = "/boot"; };
        };
        pool = {
          size = "100%";
          content = {
            type = "btrfs";
            extraArgs = [ "-f" "--label pool" ];
            mountpoint = "/pool";
            mountOptions = [ "noatime" ];
            swap.emergency.size = "16M";
            subvolumes = {
              "@" = { mountpoint = "/"; mountOptions = [ "compress=zstd:3" "noatime" ]; };
              "@home" = { mountpoint = "/home"; extraArgs = [ "-i" "1/100" ]; };
              "@home/shared" = { };
              "@snapshots" = { };
              "/swap" = {
                mountpoint = "/swap";
                swap = {
                  main.size = "64M";
                  other = { size = "32M"; path = "second-swap"; };
                };
              };
            };
          };
        };
      };
    };
  };
}
