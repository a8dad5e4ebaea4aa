# ZFS: a system disk and a two-disk mirror pool (the NAS layout), with
# pool options, root filesystem options (canmount = off: disko passes
# -m none), a pool mountpoint, datasets created in attr-name order: a
# plain filesystem, a legacy mountpoint with mount options, an unmounted
# parent and its child, an encryption root whose key comes from a file,
# and a child that inherits its encryption; and a create hook.
{
  disko.devices = {
    disk = {
      main = {
        type = "disk";
        device = "/dev/vda";
        content = {
          type = "gpt";
          partitions = {
            ESP = { size = "64M"; type = "EF00"; content = { type = "filesystem"; format = "vfat"; mountpoint = "/boot"; }; };
            root = { size = "100%"; content = { type = "filesystem"; format = "ext4"; mountpoint = "/"; }; };
          };
        };
      };
      d1 = {
        type = "disk";
        device = "/dev/vdb";
        content = { type = "gpt"; partitions.zfs = { size = "100%"; content = { type = "zfs"; pool = "tank"; }; }; };
      };
      d2 = {
        type = "disk";
        device = "/dev/vdc";
        content = { type = "gpt"; partitions.zfs = { size = "100%"; content = { type = "zfs"; pool = "tank"; }; }; };
      };
    };
    zpool.tank = {
      type = "zpool";
      mode = "mirror";
      options = { ashift = "12"; autotrim = "on"; };
      rootFsOptions = { compression = "zstd"; acltype = "posixacl"; "com.sun:auto-snapshot" = "false"; canmount = "off"; };
      mountpoint = "/srv";
      postCreateHook = "zfs snapshot tank@blank";
      datasets = {
        data = { type = "zfs_fs"; mountpoint = "/srv/data"; options.recordsize = "1M"; };
        media = { type = "zfs_fs"; options.mountpoint = "legacy"; mountpoint = "/srv/media"; mountOptions = [ "noatime" ]; };
        backup = { type = "zfs_fs"; options.mountpoint = "none"; };
        "backup/hosts" = { type = "zfs_fs"; mountpoint = "/srv/backup/hosts"; };
        secret = {
          type = "zfs_fs";
          mountpoint = "/srv/secret";
          options = { encryption = "aes-256-gcm"; keyformat = "passphrase"; keylocation = "file:///run/keys/tank.key"; };
        };
        "secret/docs" = { type = "zfs_fs"; mountpoint = "/srv/secret/docs"; };
      };
    };
  };
}
