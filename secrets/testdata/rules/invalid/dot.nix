# an entry naming the rules file's directory itself
let k = import ../keys/users.nix; in
{ "hosts/..".publicKeys = [ k.alice ]; }
