{
  "secret1.age".publicKeys = [ "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMLySPOW2Nr5nCmmo5skMh8D/fPPTL06ghi4BlBiTqBz" "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILCvFksXpoAVoN/WiV61TCj1fUPAwVde1E+bxOpkywDz" ];
  "secret2.age".publicKeys = [ "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFJXiAZ+hBlzFfUCTNkho4uLtsrtfSkywHYoMfuQraCm" ];
}
