# A mount hook: refused by name (fleet runs the create hooks only).
{
  disko.devices.disk.main = { type = "disk"; device = "/dev/vda"; content = { type = "gpt"; partitions.root = { size = "100%"; content = {
    type = "filesystem"; format = "ext4"; mountpoint = "/"; postMountHook = "touch /mnt/etc/marker";
  }; }; }; };
}
