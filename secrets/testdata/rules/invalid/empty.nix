{ "e.age".publicKeys = [ ]; }
