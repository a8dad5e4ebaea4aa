{ "g.age".publicKeys = [ "age1pq1xyz" ]; }
