package query

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/RoaringBitmap/roaring/v2"
)

// Prefix matches items whose string attribute (or any element of a
// string list) starts with Prefix: `attr LIKE 'abc%'` in the filter
// syntax.
type Prefix struct {
	Attr, Prefix string
}

func (Prefix) isExpr() {}

// StartsWith matches items whose attr starts with prefix.
func StartsWith(attr, prefix string) Expr { return Prefix{attr, prefix} }

// String renders the filter as LIKE with a trailing %, escaping %, _ and
// \ in the prefix with \.
func (c Prefix) String() string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return ident(c.Attr) + " LIKE " + Literal(r.Replace(c.Prefix)+"%")
}

// parseLike reads a LIKE pattern: a prefix then one %, the only wildcard
// supported (a % or _ elsewhere would be SQL's wildcards, which mmdb does
// not match: refused rather than taken literally); \ escapes %, _ and \.
// A pattern without % is an equality.
func parseLike(attr, pattern string, pos int) (Expr, error) {
	var b strings.Builder
	for i := 0; i < len(pattern); i++ {
		switch c := pattern[i]; {
		case c == '\\' && i+1 < len(pattern) && strings.IndexByte(`\%_`, pattern[i+1]) >= 0:
			i++
			b.WriteByte(pattern[i])
		case c == '%' && i == len(pattern)-1:
			return Prefix{attr, b.String()}, nil
		case c == '%' || c == '_':
			return nil, &SyntaxError{pos, fmt.Sprintf("LIKE %q: only a prefix then %% ('abc%%') is supported; escape a literal %% or _ with \\", pattern)}
		default:
			b.WriteByte(c)
		}
	}
	return Cmp{attr, OpEq, b.String()}, nil
}

// evalPrefix is the items whose attribute lies in [prefix, next), next
// being the least string after every string with the prefix.
func evalPrefix(x Prefix, src Source) (*roaring.Bitmap, error) {
	next := []byte(x.Prefix)
	for len(next) > 0 && next[len(next)-1] == 0xff {
		next = next[:len(next)-1]
	}
	if len(next) == 0 {
		return src.Range(x.Attr, x.Prefix, nil, true, false)
	}
	next[len(next)-1]++
	return src.Range(x.Attr, x.Prefix, string(next), true, false)
}

// matchPrefix is Prefix for one item's attributes.
func matchPrefix(x Prefix, attrs map[string]any) bool {
	switch v := Normalize(attrs[x.Attr]).(type) {
	case string:
		return strings.HasPrefix(v, x.Prefix)
	case []string:
		for _, s := range v {
			if strings.HasPrefix(s, x.Prefix) {
				return true
			}
		}
	}
	return false
}

func validPrefix(x Prefix) error {
	if x.Attr == "" {
		return fmt.Errorf("%w: empty attribute name in filter", ErrSyntax)
	}
	if !utf8.ValidString(x.Prefix) {
		return fmt.Errorf("%w: LIKE prefix is not valid UTF-8", ErrSyntax)
	}
	return nil
}
