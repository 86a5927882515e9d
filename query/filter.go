package query

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Op is a comparison operator.
type Op int

// The comparison operators.
const (
	OpEq Op = iota
	OpNe
	OpLt
	OpLe
	OpGt
	OpGe
)

var opNames = [...]string{"=", "!=", "<", "<=", ">", ">="}

func (o Op) String() string { return opNames[o] }

// Expr is a filter expression. Build one with Eq, Lt, In, And, ... or
// parse one with ParseFilter.
type Expr interface {
	// String renders the expression in the filter syntax; parsing it gives
	// an equal expression.
	String() string
	isExpr()
}

// Cmp compares an attribute with a value.
type Cmp struct {
	Attr  string
	Op    Op
	Value any // string, int64, float64 or bool
}

// InList matches an attribute equal to any of Values.
type InList struct {
	Attr   string
	Values []any
}

// Between matches Lo <= attribute <= Hi.
type Between struct {
	Attr   string
	Lo, Hi any
}

// Exists matches items that have the attribute.
type Exists struct{ Attr string }

// AndExpr matches items every term matches.
type AndExpr struct{ Terms []Expr }

// OrExpr matches items any term matches.
type OrExpr struct{ Terms []Expr }

// NotExpr matches items the term does not.
type NotExpr struct{ Term Expr }

func (Cmp) isExpr()     {}
func (InList) isExpr()  {}
func (Between) isExpr() {}
func (Exists) isExpr()  {}
func (AndExpr) isExpr() {}
func (OrExpr) isExpr()  {}
func (NotExpr) isExpr() {}

// Eq is attr = v.
func Eq(attr string, v any) Expr { return Cmp{attr, OpEq, Normalize(v)} }

// Ne is attr != v.
func Ne(attr string, v any) Expr { return Cmp{attr, OpNe, Normalize(v)} }

// Lt is attr < v.
func Lt(attr string, v any) Expr { return Cmp{attr, OpLt, Normalize(v)} }

// Le is attr <= v.
func Le(attr string, v any) Expr { return Cmp{attr, OpLe, Normalize(v)} }

// Gt is attr > v.
func Gt(attr string, v any) Expr { return Cmp{attr, OpGt, Normalize(v)} }

// Ge is attr >= v.
func Ge(attr string, v any) Expr { return Cmp{attr, OpGe, Normalize(v)} }

// In is attr IN (vs...).
func In(attr string, vs ...any) Expr {
	n := make([]any, len(vs))
	for i, v := range vs {
		n[i] = Normalize(v)
	}
	return InList{attr, n}
}

// Range is lo <= attr <= hi.
func Range(attr string, lo, hi any) Expr { return Between{attr, Normalize(lo), Normalize(hi)} }

// Has is EXISTS attr.
func Has(attr string) Expr { return Exists{attr} }

// And matches when every term does.
func And(terms ...Expr) Expr { return AndExpr{terms} }

// Or matches when any term does.
func Or(terms ...Expr) Expr { return OrExpr{terms} }

// Not negates a term.
func Not(t Expr) Expr { return NotExpr{t} }

// Normalize converts Go values to the types filters compare: integers to
// int64 (unsigned values past MaxInt64 to float64), float32 to float64, a
// []any of strings to []string. Other values are returned as they are.
func Normalize(v any) any {
	switch x := v.(type) {
	case int:
		return int64(x)
	case int8:
		return int64(x)
	case int16:
		return int64(x)
	case int32:
		return int64(x)
	case uint8:
		return int64(x)
	case uint16:
		return int64(x)
	case uint32:
		return int64(x)
	case uint:
		return int64(x)
	case uint64:
		if x > math.MaxInt64 {
			return float64(x)
		}
		return int64(x)
	case float32:
		return float64(x)
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return v
			}
			out = append(out, s)
		}
		return out
	}
	return v
}

// Literal renders a value in the filter syntax.
func Literal(v any) string {
	switch x := v.(type) {
	case string:
		return "'" + strings.ReplaceAll(x, "'", "''") + "'"
	case bool:
		if x {
			return "TRUE"
		}
		return "FALSE"
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		s := strconv.FormatFloat(x, 'g', -1, 64)
		if !strings.ContainsAny(s, ".eEn") { // keep it a float when re-parsed
			s += ".0"
		}
		return s
	}
	return fmt.Sprintf("%v", v)
}

func (c Cmp) String() string { return ident(c.Attr) + " " + c.Op.String() + " " + Literal(c.Value) }
func (c InList) String() string {
	parts := make([]string, len(c.Values))
	for i, v := range c.Values {
		parts[i] = Literal(v)
	}
	return ident(c.Attr) + " IN (" + strings.Join(parts, ", ") + ")"
}
func (c Between) String() string {
	return ident(c.Attr) + " BETWEEN " + Literal(c.Lo) + " AND " + Literal(c.Hi)
}
func (c Exists) String() string  { return "EXISTS " + ident(c.Attr) }
func (c AndExpr) String() string { return join(c.Terms, " AND ") }
func (c OrExpr) String() string  { return join(c.Terms, " OR ") }
func (c NotExpr) String() string { return "NOT (" + c.Term.String() + ")" }

func join(ts []Expr, sep string) string {
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = "(" + t.String() + ")"
	}
	return strings.Join(parts, sep)
}

// ident quotes an attribute name that is not a plain identifier or that
// collides with a keyword.
// Ident returns an attribute or modality name as the statement language
// reads it: bare when it can be, else in double quotes.
func Ident(s string) string { return ident(s) }

func ident(s string) string {
	plain := s != ""
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && (r >= '0' && r <= '9' || r == '-' || r == '.')) {
			plain = false
		}
	}
	if plain && !isKeyword(strings.ToUpper(s)) {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// Match evaluates e against one item's attributes directly: the reference
// the bitmap evaluation is tested against, and a way to filter outside a
// database.
func Match(e Expr, attrs map[string]any) bool {
	switch x := e.(type) {
	case Cmp:
		v, ok := attrs[x.Attr]
		if !ok {
			return false
		}
		v = Normalize(v)
		if list, isList := v.([]string); isList {
			if x.Op == OpNe {
				return !slices.ContainsFunc(list, func(s string) bool { return compare(s, x.Value) == 0 })
			}
			return slices.ContainsFunc(list, func(s string) bool { return cmpHolds(compare(s, x.Value), x.Op) })
		}
		return cmpHolds(compare(v, x.Value), x.Op)
	case InList:
		for _, want := range x.Values {
			if Match(Cmp{x.Attr, OpEq, want}, attrs) {
				return true
			}
		}
		return false
	case Between:
		v, ok := attrs[x.Attr]
		if !ok {
			return false
		}
		v = Normalize(v)
		in := func(s any) bool {
			lo, hi := compare(s, x.Lo), compare(s, x.Hi)
			return lo != cmpNone && hi != cmpNone && lo >= 0 && hi <= 0
		}
		if list, isList := v.([]string); isList {
			return slices.ContainsFunc(list, func(s string) bool { return in(s) })
		}
		return in(v)
	case Exists:
		_, ok := attrs[x.Attr]
		return ok
	case Prefix:
		return matchPrefix(x, attrs)
	case AndExpr:
		for _, t := range x.Terms {
			if !Match(t, attrs) {
				return false
			}
		}
		return true
	case OrExpr:
		for _, t := range x.Terms {
			if Match(t, attrs) {
				return true
			}
		}
		return false
	case NotExpr:
		return !Match(x.Term, attrs)
	}
	return false
}

// cmpNone means two values are of kinds that do not compare (a string and
// a number): no ordering operator holds, and = is false, != true.
const cmpNone = math.MinInt

// compare orders an attribute value a against a literal b: -1, 0, 1, or
// cmpNone when their kinds differ. Numbers compare across int64 and float64.
func compare(a, b any) int {
	switch x := a.(type) {
	case string:
		if y, ok := b.(string); ok {
			return strings.Compare(x, y)
		}
	case bool:
		if y, ok := b.(bool); ok {
			switch {
			case x == y:
				return 0
			case !x:
				return -1
			}
			return 1
		}
	case int64, float64:
		fa, oka := toFloat(a)
		fb, okb := toFloat(b)
		if oka && okb {
			switch {
			case fa < fb:
				return -1
			case fa > fb:
				return 1
			}
			return 0
		}
	}
	return cmpNone
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case int64:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}

func cmpHolds(c int, op Op) bool {
	if c == cmpNone {
		return op == OpNe
	}
	switch op {
	case OpEq:
		return c == 0
	case OpNe:
		return c != 0
	case OpLt:
		return c < 0
	case OpLe:
		return c <= 0
	case OpGt:
		return c > 0
	}
	return c >= 0
}

// MaxFilterDepth bounds how deeply a filter nests (parentheses, NOT, AND
// inside OR, ...), in the parser and in Validate: evaluating and printing
// a filter costs time in its depth, and no useful filter nests deeper.
const MaxFilterDepth = 100

// Validate checks that every literal in e is a string, int64, finite
// float64 or bool, every attribute name is non-empty, and e nests at most
// MaxFilterDepth deep.
func Validate(e Expr) error { return validate(e, 0) }

func validate(e Expr, depth int) error {
	if depth > MaxFilterDepth {
		return fmt.Errorf("%w: filter nests deeper than %d", ErrSyntax, MaxFilterDepth)
	}
	lit := func(v any) error {
		switch x := v.(type) {
		case string, int64, bool:
			return nil
		case float64:
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return fmt.Errorf("%w: non-finite number %v in filter", ErrSyntax, x)
			}
			return nil
		}
		return fmt.Errorf("%w: filter value %v of type %T (want string, integer, float or bool)", ErrSyntax, v, v)
	}
	attr := func(a string) error {
		if a == "" {
			return fmt.Errorf("%w: empty attribute name in filter", ErrSyntax)
		}
		return nil
	}
	switch x := e.(type) {
	case Cmp:
		if err := attr(x.Attr); err != nil {
			return err
		}
		return lit(x.Value)
	case InList:
		if err := attr(x.Attr); err != nil {
			return err
		}
		for _, v := range x.Values {
			if err := lit(v); err != nil {
				return err
			}
		}
		return nil
	case Between:
		if err := attr(x.Attr); err != nil {
			return err
		}
		if err := lit(x.Lo); err != nil {
			return err
		}
		return lit(x.Hi)
	case Exists:
		return attr(x.Attr)
	case Prefix:
		return validPrefix(x)
	case AndExpr:
		if len(x.Terms) == 0 {
			return fmt.Errorf("%w: an AND of no terms", ErrSyntax)
		}
		for _, t := range x.Terms {
			if err := validate(t, depth+1); err != nil {
				return err
			}
		}
		return nil
	case OrExpr:
		if len(x.Terms) == 0 {
			return fmt.Errorf("%w: an OR of no terms", ErrSyntax)
		}
		for _, t := range x.Terms {
			if err := validate(t, depth+1); err != nil {
				return err
			}
		}
		return nil
	case NotExpr:
		// NOT prints as "NOT (...)", which the parser counts as two
		// levels: count it the same, so what validates parses back.
		return validate(x.Term, depth+2)
	case nil:
		return fmt.Errorf("%w: nil filter expression", ErrSyntax)
	}
	return fmt.Errorf("%w: unknown filter expression %T", ErrSyntax, e)
}

// Compared returns the attributes that e compares with a value (=, <,
// IN, BETWEEN, ...), each once, in order of first appearance; attributes
// only tested with EXISTS are left out.
func Compared(e Expr) []string {
	var out []string
	seen := map[string]bool{}
	var walk func(Expr)
	walk = func(e Expr) {
		name := ""
		switch x := e.(type) {
		case Cmp:
			name = x.Attr
		case InList:
			name = x.Attr
		case Between:
			name = x.Attr
		case Prefix:
			name = x.Attr
		case AndExpr:
			for _, t := range x.Terms {
				walk(t)
			}
		case OrExpr:
			for _, t := range x.Terms {
				walk(t)
			}
		case NotExpr:
			walk(x.Term)
		}
		if name != "" && !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
	}
	walk(e)
	return out
}

// Parse parses a filter in the filter syntax ("year >= 2010 AND tags =
// 'dog'") and validates it.
func Parse(s string) (Expr, error) {
	e, err := ParseFilter(s)
	if err != nil {
		return nil, err
	}
	return e, Validate(e)
}

// MustParse is Parse for filters written in the program: it panics on a
// malformed one.
func MustParse(s string) Expr {
	e, err := Parse(s)
	if err != nil {
		panic(fmt.Sprintf("query.MustParse(%q): %v", s, err))
	}
	return e
}
