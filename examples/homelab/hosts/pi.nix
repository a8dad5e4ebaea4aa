# pi: a Raspberry-Pi-like board (aarch64), one disk with an MBR, as the
# board's firmware reads it: an msdos table (disko's legacy table) whose
# first partition is the bootable FAT32 firmware partition (MBR type 0x0c,
# from parted's fat32), mounted where NixOS keeps a Pi's firmware files,
# and an ext4 root (type 0x83) after it. On a real Pi the disk is the SD
# card, /dev/mmcblk0; here it is the rig's first disk. Its .age files are
# in the input named secrets.
{ secrets }:
import ./common.nix { hostName = "pi"; system = "aarch64-linux"; } // {
  disko.devices.disk.main = {
    type = "disk";
    device = "/dev/vda";
    content = {
      type = "table";
      format = "msdos";
      partitions = [
        {
          name = "firmware";
          start = "8MiB";
          end = "264MiB";
          fs-type = "fat32";
          bootable = true;
          content = { type = "filesystem"; format = "vfat"; extraArgs = [ "-F" "32" "-n" "FIRMWARE" ]; mountpoint = "/boot/firmware"; };
        }
        {
          name = "root";
          start = "264MiB";
          end = "100%";
          content = { type = "filesystem"; format = "ext4"; mountpoint = "/"; extraArgs = [ "-L" "nixos" ]; };
        }
      ];
    };
  };

  age.secrets = {
    wifi-psk.file = "${secrets}/wifi-psk.age";
    mqtt-password = { file = "${secrets}/mqtt-password.age"; owner = "root"; mode = "0440"; };
  };
}
