# an entry climbing out of the rules file's directory
let k = import ../keys/users.nix; in
{
  "ok.age".publicKeys = [ k.alice ];
  "../other/prod.age".publicKeys = [ k.alice k.bob ];
}
