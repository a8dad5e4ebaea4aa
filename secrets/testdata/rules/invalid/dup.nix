let k = import ../keys/users.nix; in { "d.age".publicKeys = [ k.alice k.bob k.alice ]; }
