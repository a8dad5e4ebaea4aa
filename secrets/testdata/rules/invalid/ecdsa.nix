{ "e.age".publicKeys = [ "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBGhkj/rby883bmNfOyu4hVI9Y2Z4EJYpw6+NCCmeBgvV8inhoReQoWCecMHWuBV7p1HUJb6gghEWrgnpJUbehfs=" ]; }
