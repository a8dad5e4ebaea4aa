package main

import "testing"

// TestSecretsRulesScripts covers `fleet secrets rules`: listing, --json
// byte-identical to nix-instantiate, RULES, evaluator choice, errors.
func TestSecretsRulesScripts(t *testing.T) { runScripts(t, "secrets_rules", nil) }
