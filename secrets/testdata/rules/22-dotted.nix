let k = import ./keys/users.nix; in
{
  "a.age".publicKeys = [ k.alice ];
  "a.age".armor = true;
  hosts.nas."smb.age".publicKeys = [ k.bob ];
  hosts.nas.extra = 1;
  hosts.web = { tls = 2; };
  hosts.web.cert = 3;
}
