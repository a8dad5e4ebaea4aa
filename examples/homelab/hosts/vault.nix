# vault: an EFI system partition, an ext4 root, and a LUKS container
# (its key given at install time: fleet install --disk-key crypted=FILE)
# holding an LVM volume group with an ext4 volume for /var/lib/vault.
# The root stays outside LUKS only because the rig's firmware boots a
# plain root; the unlocking initrd is NixOS's job, not the rig's.
# Its .age files are the flake's own (secrets/), staged with the flake.
{ }:
let parts = import ./parts.nix; in
import ./common.nix { hostName = "vault"; } // {
  disko.devices = {
    disk.main = {
      type = "disk";
      device = "/dev/vda";
      content = {
        type = "gpt";
        partitions = {
          ESP = parts.esp;
          root = parts.root "1200M";
          luks = {
            size = "100%";
            content = {
              type = "luks";
              name = "crypted";
              settings.allowDiscards = true;
              content = { type = "lvm_pv"; vg = "pool"; };
            };
          };
        };
      };
    };
    lvm_vg.pool = {
      type = "lvm_vg";
      lvs.data = { size = "100%FREE"; content = { type = "filesystem"; format = "ext4"; mountpoint = "/var/lib/vault"; }; };
    };
  };

  age.secrets = {
    openai-key.file = ../secrets/openai-key.age;
    anthropic-api-key = { file = ../secrets/anthropic-api-key.age; mode = "0440"; group = "root"; };
  };
}
