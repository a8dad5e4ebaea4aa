# climbing out after going down first
let k = import ../keys/users.nix; in
{ "hosts/../../other/prod.age".publicKeys = [ k.alice ]; }
