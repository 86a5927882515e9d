package transfer

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"
)

// milvusName is a name Milvus accepts for a collection or a field.
var milvusName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,254}$`)

// milvusKeywords are words of Milvus's expression language that it
// refuses as field names, in any case.
var milvusKeywords = map[string]bool{
	"and": true, "or": true, "not": true, "in": true, "like": true, "null": true, "exists": true,
	"true": true, "false": true, "text_match": true, "phrase_match": true, "random_sample": true,
	"array_contains": true, "array_contains_all": true, "array_contains_any": true, "array_length": true,
	"json_contains": true, "json_contains_all": true, "json_contains_any": true,
}

// lanceReserved are column names Lance keeps for itself (_rowid,
// _rowaddr, _rowoffset) or adds to search results (_distance, _score,
// _relevance_score): a column of that name fails the table or its
// searches.
var lanceReserved = map[string]bool{
	"_rowid": true, "_rowaddr": true, "_rowoffset": true, "_distance": true, "_score": true, "_relevance_score": true,
}

// namer gives names a target accepts, distinct from each other. Milvus
// compares field names exactly; LanceDB's SQL filters fold unquoted names
// to lower case, so there names differing only in case collide.
type namer struct {
	target Target
	used   map[string]bool // by key()
}

// newNamer starts a namer with names already taken.
func newNamer(target Target, taken ...string) *namer {
	n := &namer{target: target, used: map[string]bool{}}
	for _, t := range taken {
		if t != "" {
			n.used[n.key(t)] = true
		}
	}
	return n
}

func (n *namer) key(s string) string {
	if n.target == LanceDB {
		return strings.ToLower(s)
	}
	return s
}

// valid says whether s may be used as it is.
func (n *namer) valid(s string) bool {
	if n.target == LanceDB {
		return s != "" && !strings.Contains(s, ".") && !lanceReserved[strings.ToLower(s)]
	}
	return milvusName.MatchString(s) && !milvusKeywords[strings.ToLower(s)]
}

// assign names each of names: first those that are valid and free as they
// are (so a valid name never loses to a mapped one), then the others,
// mapped and suffixed until free.
func (n *namer) assign(names []string) map[string]string {
	sorted := append([]string(nil), names...)
	sort.Strings(sorted)
	out := make(map[string]string, len(names))
	for _, s := range sorted {
		if n.valid(s) && !n.used[n.key(s)] {
			n.used[n.key(s)] = true
			out[s] = s
		}
	}
	for _, s := range sorted {
		if _, done := out[s]; done {
			continue
		}
		base := n.sanitize(s)
		name := base
		for i := 2; n.used[n.key(name)] || !n.valid(name); i++ {
			name = fmt.Sprintf("%s_%d", base, i)
		}
		n.used[n.key(name)] = true
		out[s] = name
	}
	return out
}

// sanitize maps the characters the target refuses to '_'.
func (n *namer) sanitize(s string) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case n.target == LanceDB && r != '.':
			b.WriteRune(r)
		case r == '_' || r < utf8.RuneSelf && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'):
			b.WriteRune(r)
		case r >= '0' && r <= '9':
			if i == 0 {
				b.WriteByte('_')
			}
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	out := b.String()
	for len(out) > milvusMaxName-8 || !utf8.ValidString(out) {
		out = out[:len(out)-1] // within the limit, on a rune boundary
	}
	if out == "" {
		out = "_"
	}
	return out
}
