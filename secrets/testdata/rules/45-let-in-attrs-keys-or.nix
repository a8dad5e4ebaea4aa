let
  attrs = { a = { b = { c = 1; }; }; "quoted key" = 2; or = 3; };
in
{
  deep = attrs.a.b.c;
  q = attrs."quoted key";
  orAttr = attrs.or;
  dflt = attrs.a.x.y or "fallback";
  dynSel = attrs.${"a"}.b.${"c"};
  interpKey = attrs."${"quoted"} key";
}
