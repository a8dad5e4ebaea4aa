# user keys
{
  alice = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMLySPOW2Nr5nCmmo5skMh8D/fPPTL06ghi4BlBiTqBz";
  bob = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFJXiAZ+hBlzFfUCTNkho4uLtsrtfSkywHYoMfuQraCm";
  carol = "age1yvdxa70wd6vsc4e7lg3c28lsyggjr5yw8sqzlqwa0es88wxf4ylqq9dkee";
}
