# Legacy tables made with parted: an msdos table as a Raspberry Pi's
# firmware wants it (a bootable FAT32 partition first), and a legacy gpt
# table whose partition names hold spaces.
{
  disko.devices.disk = {
    sd = {
      type = "disk";
      device = "/dev/mmcblk0";
      content = {
        type = "table";
        format = "msdos";
        partitions = [
          {
            start = "8MiB";
            end = "520MiB";
            fs-type = "fat32";
            bootable = true;
            flags = [ "lba" ];
            content = { type = "filesystem"; format = "vfat"; mountpoint = "/boot/firmware"; extraArgs = [ "-F" "32" "-n" "FIRMWARE" ]; };
          }
          {
            start = "520MiB";
            end = "100%";
            content = { type = "filesystem"; format = "ext4"; mountpoint = "/"; };
          }
        ];
      };
    };
    usb = {
      type = "disk";
      device = "/dev/sdx";
      content = {
        type = "table";
        format = "gpt";
        partitions = [
          { name = "EFI part"; start = "1MiB"; end = "200MiB"; bootable = true;
            content = { type = "filesystem"; format = "vfat"; mountpoint = "/efi"; }; }
          { name = "data"; start = "200MiB"; end = "-1MiB"; fs-type = "ext4";
            content = { type = "filesystem"; format = "ext4"; mountpoint = "/data"; }; }
        ];
      };
    };
  };
}
