// Package nixeval is a small, lazy evaluator for the part of the Nix
// language that configuration files such as agenix's secrets.nix use.
//
// The model follows Nix: a file is parsed ([Parse]) into an expression
// tree; evaluation ([EvalFile], [EvalFileJSON]) produces values whose
// list elements and attribute values are thunks, forced only when needed
// (deeply when the result is printed as JSON, like
// `nix-instantiate --eval --strict --json`). Variables are resolved
// lexically first, then through enclosing `with` scopes, innermost first.
//
// Everything that can go wrong is an [*Error] carrying file:line:column.
// A construct or builtin this package does not implement (`<nixpkgs>`,
// `builtins.getFlake`, derivations, impure values such as
// `builtins.currentSystem`) is an error that matches [ErrUnsupported]
// with [errors.Is], so callers can fall back to a real Nix. A path that
// Nix would copy to the store (in a string, or in JSON output) gets the
// store path Nix would give it, computed from its NAR hash, without
// writing anything: what `nix-instantiate --readonly-mode` prints.
// JSON output ([MarshalJSON]) is byte for byte what Nix 2.8 prints. Evaluation is bounded: recursion depth, evaluation steps
// and string/list sizes have limits ([Options]), and infinite recursion
// is detected, so hostile input ends in an error, not a crash.
package nixeval
