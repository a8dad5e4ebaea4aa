# bcachefs: refused by name before anything runs.
{
  disko.devices = {
    disk.main = { type = "disk"; device = "/dev/vda"; content = { type = "gpt"; partitions.b = { size = "100%"; content = { type = "bcachefs"; filesystem = "fs"; }; }; }; };
    bcachefs_filesystems.fs = { type = "bcachefs_filesystem"; mountpoint = "/"; };
  };
}
