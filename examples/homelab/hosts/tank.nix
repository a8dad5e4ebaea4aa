# tank: a ZFS NAS. The system disk has an EFI system partition and an
# ext4 root; two data disks mirror the pool "tank": compressed datasets
# for data and media (a legacy mountpoint, mounted by fileSystems), and
# one encrypted dataset. Its key is an agenix secret: the installed
# system loads it from /run/agenix/tank-key (its keylocation) when it
# imports the pool at boot; at install time fleet gives zfs the same key
# on stdin (fleet install tank --disk-key tank/secret=FILE), never in a
# file on the installer.
{ secrets }:
let
  parts = import ./parts.nix;
  member = { type = "gpt"; partitions.zfs = { size = "100%"; content = { type = "zfs"; pool = "tank"; }; }; };
in
import ./common.nix { hostName = "tank"; } // {
  # ZFS wants a host id: the one the pool records when the system
  # imports it (fleet's installer exports the pool before the reboot).
  networking = { hostName = "tank"; hostId = "7a4b1c2d"; };
  boot.supportedFilesystems = [ "zfs" ];

  disko.devices = {
    disk = {
      main = {
        type = "disk";
        device = "/dev/vda";
        content = {
          type = "gpt";
          partitions = {
            ESP = parts.esp;
            root = parts.root "100%";
          };
        };
      };
      data1 = { type = "disk"; device = "/dev/vdb"; content = member; };
      data2 = { type = "disk"; device = "/dev/vdc"; content = member; };
    };
    zpool.tank = {
      type = "zpool";
      mode = "mirror";
      options.ashift = "12";
      rootFsOptions = { compression = "zstd"; atime = "off"; mountpoint = "none"; "com.sun:auto-snapshot" = "false"; };
      datasets = {
        data = { type = "zfs_fs"; mountpoint = "/srv/data"; };
        media = { type = "zfs_fs"; mountpoint = "/srv/media"; options = { mountpoint = "legacy"; recordsize = "1M"; }; };
        secret = {
          type = "zfs_fs";
          mountpoint = "/srv/secret";
          options = { encryption = "aes-256-gcm"; keyformat = "passphrase"; keylocation = "file:///run/agenix/tank-key"; };
        };
      };
    };
  };

  age.secrets = {
    tank-key.file = "${secrets}/tank-key.age";
    restic-password = { file = "${secrets}/restic-password.age"; owner = "root"; mode = "0400"; };
  };
}
