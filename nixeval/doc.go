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
// JSON output ([MarshalJSON]) is byte for byte what Nix 2.8 prints, and a
// function that reaches it is an error at the file:line:column Nix names.
//
// Evaluation is confined and bounded, so a hostile file ends in an error,
// not a leak or a crash. Files are read only inside a root
// ([Options.Root]; by default [RepoRoot]: the git work tree holding the
// evaluated file, or its directory when there is none), also through
// symlinks; anything else matches [ErrForbidden]. Recursion depth,
// evaluation steps, the size of any one value and the bytes of all the
// values built have limits ([Options], [ErrLimit]), and infinite recursion
// is detected. builtins.getEnv reads the environment, as Nix does.
package nixeval
