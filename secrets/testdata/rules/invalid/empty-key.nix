# an empty recipient (a .pub file that was never filled in)
let k = import ../keys/users.nix; in
{ "e.age".publicKeys = [ k.alice "" ]; }
