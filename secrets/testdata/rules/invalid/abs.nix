# an entry naming a file by absolute path
let k = import ../keys/users.nix; in
{
  "ok.age".publicKeys = [ k.alice ];
  "/srv/other/prod.age".publicKeys = [ k.alice k.bob ];
}
