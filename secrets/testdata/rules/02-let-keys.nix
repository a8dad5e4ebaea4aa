let
  user1 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMLySPOW2Nr5nCmmo5skMh8D/fPPTL06ghi4BlBiTqBz";
  user2 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFJXiAZ+hBlzFfUCTNkho4uLtsrtfSkywHYoMfuQraCm";
  users = [ user1 user2 ];

  system1 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILCvFksXpoAVoN/WiV61TCj1fUPAwVde1E+bxOpkywDz";
  system2 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHQhSpapuevW0gA+ckqGKCH98+TAMplrKH2DLtGKJD4i";
  systems = [ system1 system2 ];
in
{
  "secret1.age".publicKeys = [ user1 system1 ];
  "secret2.age".publicKeys = users ++ systems;
  "armored-secret.age" = {
    publicKeys = [ user1 ];
    armor = true;
  };
}
