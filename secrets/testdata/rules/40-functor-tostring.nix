let
  adder = { n = 5; __functor = self: x: self.n + x; };
  named = { __toString = self: "named-thing"; };
  drv = { outPath = "/some/path"; };
in
{ r = adder 10; s = "${named}"; t = toString named; o = "${drv}"; asJson = drv; }
