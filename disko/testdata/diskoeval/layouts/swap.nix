# Swap in its forms: random encryption (left raw), a discard policy and
# priority, extra mkswap arguments, a resume device.
{
  disko.devices.disk.main = {
    type = "disk";
    device = "/dev/sdb";
    content = {
      type = "gpt";
      partitions = {
        root = { size = "4G"; content = { type = "filesystem"; format = "ext4"; mountpoint = "/"; }; };
        crypt = { size = "512M"; content = { type = "swap"; randomEncryption = true; priority = 10; }; };
        fast = { size = "256M"; content = { type = "swap"; discardPolicy = "pages"; priority = 5; extraArgs = [ "-L fastswap" ]; }; };
        resume = { size = "100%"; content = { type = "swap"; resumeDevice = true; mountOptions = [ "nofail" ]; }; };
      };
    };
  };
}
