{ "g.age".publicKeys = [ "age1notavalidkey" ]; }
