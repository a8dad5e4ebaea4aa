# A hybrid MBR for firmware that reads the MBR: a FAT partition given an
# MBR entry of type 0x0c, a bootable one, the EFI entry last.
{
  disko.devices.disk.board = {
    type = "disk";
    device = "/dev/mmcblk0";
    content = {
      type = "gpt";
      efiGptPartitionFirst = false;
      partitions = {
        firmware = {
          priority = 1;
          size = "64M";
          type = "0700";
          hybrid = { mbrPartitionType = "0x0c"; };
          content = { type = "filesystem"; format = "vfat"; mountpoint = "/boot/firmware"; };
        };
        loader = {
          priority = 2;
          size = "32M";
          type = "EF00";
          hybrid = { mbrBootableFlag = true; };
          content = { type = "filesystem"; format = "vfat"; };
        };
        root = {
          size = "100%";
          content = { type = "filesystem"; format = "ext4"; mountpoint = "/"; };
        };
      };
    };
  };
}
