let a = { z = 1; a = 2; m = { x = 1; }; }; in
{
  names = builtins.attrNames a;
  values = builtins.attrValues { b = 1; a = 2; };
  removed = builtins.removeAttrs a [ "z" "missing" ];
  get = builtins.getAttr "a" a;
  has = [ (builtins.hasAttr "m" a) (a ? m.x) (a ? m.y) (a ? q.r) ];
  intersect = builtins.intersectAttrs { a = 0; q = 0; } a;
  dyn = { ${"dyn" + "amic"} = true; ${null} = false; };
  quoted = { "with space" = 1; "a.b" = 2; "" = 3; };
}
