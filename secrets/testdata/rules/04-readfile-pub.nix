let
  alice = builtins.readFile ./pubkeys/alice.pub;
  nas = builtins.readFile ./pubkeys/nas.pub;
in
{
  "nas-smb.age".publicKeys = [ alice nas ];
  "raw.age".publicKeys = [ (builtins.readFile ./pubkeys/web.pub) ];
}
