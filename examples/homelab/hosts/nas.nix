# nas: a 3-disk NAS. The system disk has an EFI system partition and an
# ext4 root; two data disks form an mdadm raid1 with xfs on /srv/data.
# Its .age files are in the input named secrets.
{ secrets }:
let parts = import ./parts.nix; in
import ./common.nix { hostName = "nas"; } // {
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
      data1 = {
        type = "disk";
        device = "/dev/vdb";
        content = { type = "gpt"; partitions.raid = { size = "100%"; content = { type = "mdraid"; name = "data"; }; }; };
      };
      data2 = {
        type = "disk";
        device = "/dev/vdc";
        content = { type = "gpt"; partitions.raid = { size = "100%"; content = { type = "mdraid"; name = "data"; }; }; };
      };
    };
    mdadm.data = {
      type = "mdadm";
      level = 1;
      content = { type = "filesystem"; format = "xfs"; mountpoint = "/srv/data"; };
    };
  };

  age.secrets = {
    openai-key.file = "${secrets}/openai-key.age";
    anthropic-api-key.file = "${secrets}/anthropic-api-key.age";
    datadog-api-key.file = "${secrets}/datadog-api-key.age";
    datadog-app-key.file = "${secrets}/datadog-app-key.age";
    smb-credentials = { file = "${secrets}/smb-credentials.age"; owner = "root"; mode = "0400"; };
    protonvpn-wireguard = { file = "${secrets}/protonvpn-wireguard.age"; path = "/etc/wireguard/wg0.conf"; };
  };
}
