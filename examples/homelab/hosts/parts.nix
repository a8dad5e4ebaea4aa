# Partitions the hosts share: the EFI system partition, and an ext4 root
# of a given size whose label is what the rig's firmware boots
# (root=LABEL=nixos).
{
  esp = { size = "64M"; type = "EF00"; content = { type = "filesystem"; format = "vfat"; }; };
  root = size: { inherit size; content = { type = "filesystem"; format = "ext4"; mountpoint = "/"; extraArgs = [ "-L" "nixos" ]; }; };
}
