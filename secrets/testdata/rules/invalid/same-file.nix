# two entries for one file, with different recipients
let k = import ../keys/users.nix; in
{
  "hosts/nas.age".publicKeys = [ k.alice ];
  "./hosts/nas.age".publicKeys = [ k.bob ];
}
