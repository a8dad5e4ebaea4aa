# leading comment
/* block
   comment */
let k = /* inline */ import ./keys/users.nix; # trailing
in {
  # entry
  "c.age".publicKeys = [
    k.alice # first
    /* second */ k.bob
  ];
}
