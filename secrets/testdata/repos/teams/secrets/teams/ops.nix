keys: {
  "ops/pagerduty.age".publicKeys = keys.ops ++ [ keys.hosts.web ];
  "ops/grafana.age".publicKeys = keys.ops;
}
