package nixeval

import "strings"

// What building a value costs, in bytes, against Options.MaxAlloc: close
// to what the Go values take (a thunk with its closure, a list slot, a
// set entry with its position), so that the limit bounds the memory of an
// evaluation, garbage included, whatever the file does.
const (
	costThunk = 64  // a *Thunk
	costCall  = 112 // a thunk that applies a function later (map, genList): thunk and closure
	costSlot  = 8   // a list element's pointer
	costEntry = 96  // an attribute: map entry, name, position
	costEnv   = 80  // a scope
	costNode  = 24  // a value header (list, set, string) or a JSON node
	costParse = 8   // per byte of a file parsed: tokens and the tree
)

// alloc charges n bytes of values about to be built, and fails once the
// evaluation has built more than Options.MaxAlloc in all. Charge before
// allocating what is large.
func (ev *evaluator) alloc(pos Pos, n int64) error {
	ev.used += n
	if ev.used > ev.opts.MaxAlloc {
		return ev.overBudget(pos)
	}
	return nil
}

// allocJSON is alloc for the JSON form of values, whose error says so.
func (ev *evaluator) allocJSON(pos Pos, n int64) error {
	ev.used += n
	if ev.used > ev.opts.MaxAlloc {
		return limitf(pos, "evaluation built more than %d bytes of values, converting them to JSON", ev.opts.MaxAlloc)
	}
	return nil
}

func (ev *evaluator) overBudget(pos Pos) *Error {
	return limitf(pos, "evaluation built more than %d bytes of values", ev.opts.MaxAlloc)
}

// stringBuilder builds a string, charging its bytes as they are added and
// keeping it within the size of one value (Options.MaxBytes).
type stringBuilder struct {
	ev  *evaluator
	pos Pos
	b   strings.Builder
}

func (ev *evaluator) newString(pos Pos) *stringBuilder { return &stringBuilder{ev: ev, pos: pos} }

func (s *stringBuilder) add(str string) error {
	if s.b.Len()+len(str) > s.ev.opts.MaxBytes {
		return limitf(s.pos, "string longer than %d bytes", s.ev.opts.MaxBytes)
	}
	if err := s.ev.alloc(s.pos, int64(len(str))); err != nil {
		return err
	}
	s.b.WriteString(str)
	return nil
}

func (s *stringBuilder) addByte(c byte) error {
	if s.b.Len()+1 > s.ev.opts.MaxBytes {
		return limitf(s.pos, "string longer than %d bytes", s.ev.opts.MaxBytes)
	}
	if err := s.ev.alloc(s.pos, 1); err != nil {
		return err
	}
	s.b.WriteByte(c)
	return nil
}

func (s *stringBuilder) Len() int       { return s.b.Len() }
func (s *stringBuilder) String() string { return s.b.String() }
