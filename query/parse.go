package query

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrSyntax: a filter or statement could not be parsed. The error's
// message names the position (1-based byte column) and what was expected.
var ErrSyntax = errors.New("syntax error")

// SyntaxError locates a parse error.
type SyntaxError struct {
	// Pos is the 0-based byte offset of the offending token.
	Pos int
	// Msg says what was found and what was expected.
	Msg string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("syntax error at column %d: %s", e.Pos+1, e.Msg)
}

// Unwrap makes errors.Is(err, ErrSyntax) hold.
func (e *SyntaxError) Unwrap() error { return ErrSyntax }

type tokKind int

const (
	tEOF tokKind = iota
	tIdent
	tKeyword
	tString
	tNumber
	tOp
	tLParen
	tRParen
	tComma
	tLBracket
	tRBracket
	tSemi
)

type token struct {
	kind tokKind
	text string // keyword upper-cased; string unquoted; ident unquoted
	pos  int
}

var keywords = map[string]bool{
	"AND": true, "OR": true, "NOT": true, "IN": true, "BETWEEN": true, "EXISTS": true,
	"TRUE": true, "FALSE": true,
	// statement words, reserved here so filters and statements agree
	"SEARCH": true, "NEAR": true, "OF": true, "WEIGHT": true, "FUSE": true, "WHERE": true,
	"LIMIT": true, "EF": true, "GET": true, "DELETE": true, "COUNT": true, "EXPLAIN": true, "ANALYZE": true,
	"EXACT": true, "ALIGN": true, "TO": true, "USING": true, "FORCE": true,
}

func isKeyword(upper string) bool { return keywords[upper] }

// MaxStatementLen bounds the text of one statement or filter, in bytes:
// parsing holds a token per word, so an unbounded text (a 40 MB line of
// parentheses) cost gigabytes before any other limit applied.
const MaxStatementLen = 1 << 20

// lex splits s into tokens.
func lex(s string) ([]token, error) {
	if len(s) > MaxStatementLen {
		return nil, &SyntaxError{MaxStatementLen, fmt.Sprintf("a statement of at most %d bytes (this one has %d)", MaxStatementLen, len(s))}
	}
	var toks []token
	i := 0
	for i < len(s) {
		r, w := utf8.DecodeRuneInString(s[i:])
		switch {
		case unicode.IsSpace(r):
			i += w
		case r == '-' && i+1 < len(s) && s[i+1] == '-': // comment to end of line
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case r == '(':
			toks = append(toks, token{tLParen, "(", i})
			i++
		case r == ')':
			toks = append(toks, token{tRParen, ")", i})
			i++
		case r == ',':
			toks = append(toks, token{tComma, ",", i})
			i++
		case r == '[':
			toks = append(toks, token{tLBracket, "[", i})
			i++
		case r == ']':
			toks = append(toks, token{tRBracket, "]", i})
			i++
		case r == ';':
			toks = append(toks, token{tSemi, ";", i})
			i++
		case r == '=':
			toks = append(toks, token{tOp, "=", i})
			i++
		case r == '!' || r == '<' || r == '>':
			if i+1 < len(s) && s[i+1] == '=' {
				toks = append(toks, token{tOp, s[i : i+2], i})
				i += 2
			} else if r == '<' && i+1 < len(s) && s[i+1] == '>' {
				toks = append(toks, token{tOp, "!=", i})
				i += 2
			} else if r == '!' {
				return nil, &SyntaxError{i, "'!' must be followed by '='"}
			} else {
				toks = append(toks, token{tOp, string(r), i})
				i++
			}
		case r == '\'' || r == '"':
			q := byte(r)
			start := i
			i++
			var b strings.Builder
			for {
				if i >= len(s) {
					return nil, &SyntaxError{start, "unterminated quoted text"}
				}
				if s[i] == q {
					if i+1 < len(s) && s[i+1] == q { // doubled quote
						b.WriteByte(q)
						i += 2
						continue
					}
					i++
					break
				}
				b.WriteByte(s[i])
				i++
			}
			kind := tString
			if q == '"' {
				kind = tIdent
			}
			toks = append(toks, token{kind, b.String(), start})
		case r == '-' || r == '+' || r == '.' || unicode.IsDigit(r):
			start := i
			i++
			for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.' || s[i] == 'e' || s[i] == 'E' ||
				(s[i] == '-' || s[i] == '+') && (s[i-1] == 'e' || s[i-1] == 'E')) {
				i++
			}
			toks = append(toks, token{tNumber, s[start:i], start})
		case r == '_' || unicode.IsLetter(r):
			start := i
			for i < len(s) {
				r, w := utf8.DecodeRuneInString(s[i:])
				if !(r == '_' || r == '-' || r == '.' || unicode.IsLetter(r) || unicode.IsDigit(r)) {
					break
				}
				i += w
			}
			word := s[start:i]
			if up := strings.ToUpper(word); keywords[up] {
				toks = append(toks, token{tKeyword, up, start})
			} else {
				toks = append(toks, token{tIdent, word, start})
			}
		default:
			return nil, &SyntaxError{i, fmt.Sprintf("unexpected character %q", r)}
		}
	}
	return append(toks, token{tEOF, "", len(s)}), nil
}

// parser walks a token slice.
type parser struct {
	toks []token
	i    int
	src  string // the text parsed, for hints about quoting
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *parser) isKeyword(kw string) bool {
	t := p.peek()
	return t.kind == tKeyword && t.text == kw
}

func (p *parser) acceptKeyword(kw string) bool {
	if p.isKeyword(kw) {
		p.i++
		return true
	}
	return false
}

// acceptWord consumes the next token if it is the unreserved word w (an
// identifier, any case): a statement word that is no keyword, so that
// names may still use it.
func (p *parser) acceptWord(w string) bool {
	if t := p.toks[p.i]; t.kind == tIdent && strings.EqualFold(t.text, w) {
		p.i++
		return true
	}
	return false
}

func describe(t token) string {
	switch t.kind {
	case tEOF:
		return "end of input"
	case tString:
		return "'" + t.text + "'"
	case tKeyword:
		return t.text
	}
	return fmt.Sprintf("%q", t.text)
}

func (p *parser) fail(want string) error {
	t := p.peek()
	return &SyntaxError{t.pos, fmt.Sprintf("expected %s, found %s", want, describe(t))}
}

// ParseFilter parses a filter expression. Errors wrap ErrSyntax and are
// *SyntaxError values that give the position.
func ParseFilter(s string) (Expr, error) {
	toks, err := lex(s)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks, src: s}
	e, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	if p.peek().kind != tEOF {
		return nil, p.fail("AND, OR or end of filter")
	}
	return e, nil
}

const maxDepth = MaxFilterDepth

func (p *parser) parseOr() (Expr, error) { return p.parseOrDepth(0) }

func (p *parser) parseOrDepth(d int) (Expr, error) {
	if d > maxDepth {
		return nil, p.fail(fmt.Sprintf("less nesting (limit %d)", maxDepth))
	}
	terms, err := p.parseJoined("OR", func() (Expr, error) {
		return p.parseJoinedExpr("AND", func() (Expr, error) { return p.parseNot(d) }, func(ts []Expr) Expr { return AndExpr{ts} })
	})
	if err != nil || len(terms) == 1 {
		return first(terms), err
	}
	return OrExpr{terms}, nil
}

// parseJoinedExpr parses sub (keyword sub)* and combines two or more terms
// with join.
func (p *parser) parseJoinedExpr(keyword string, sub func() (Expr, error), join func([]Expr) Expr) (Expr, error) {
	terms, err := p.parseJoined(keyword, sub)
	if err != nil || len(terms) == 1 {
		return first(terms), err
	}
	return join(terms), nil
}

// parseJoined parses sub (keyword sub)*.
func (p *parser) parseJoined(keyword string, sub func() (Expr, error)) ([]Expr, error) {
	var terms []Expr
	for {
		t, err := sub()
		if err != nil {
			return nil, err
		}
		terms = append(terms, t)
		if !p.acceptKeyword(keyword) {
			return terms, nil
		}
	}
}

func first(ts []Expr) Expr {
	if len(ts) == 0 {
		return nil
	}
	return ts[0]
}

func (p *parser) parseNot(d int) (Expr, error) {
	if p.acceptKeyword("NOT") {
		if d > maxDepth {
			return nil, p.fail(fmt.Sprintf("less nesting (limit %d)", maxDepth))
		}
		t, err := p.parseNot(d + 1)
		if err != nil {
			return nil, err
		}
		return NotExpr{t}, nil
	}
	return p.parsePrimary(d)
}

func (p *parser) parsePrimary(d int) (Expr, error) {
	t := p.peek()
	switch {
	case t.kind == tLParen:
		p.next()
		e, err := p.parseOrDepth(d + 1)
		if err != nil {
			return nil, err
		}
		if p.peek().kind != tRParen {
			return nil, p.fail("')'")
		}
		p.next()
		return e, nil
	case t.kind == tKeyword && t.text == "EXISTS":
		p.next()
		a := p.peek()
		if a.kind != tIdent {
			return nil, p.fail("an attribute name after EXISTS")
		}
		p.next()
		return Exists{a.text}, nil
	case t.kind == tIdent:
		p.next()
		attr := t.text
		switch {
		case p.peek().kind == tOp:
			op := p.next()
			v, err := p.parseLiteral()
			if err != nil {
				return nil, err
			}
			return Cmp{attr, parseOp(op.text), v}, nil
		case p.acceptKeyword("IN"):
			if p.peek().kind != tLParen {
				return nil, p.fail("'(' after IN")
			}
			p.next()
			var vs []any
			for {
				v, err := p.parseLiteral()
				if err != nil {
					return nil, err
				}
				vs = append(vs, v)
				if p.peek().kind == tComma {
					p.next()
					continue
				}
				if p.peek().kind != tRParen {
					return nil, p.fail("',' or ')'")
				}
				p.next()
				return InList{attr, vs}, nil
			}
		case p.acceptKeyword("BETWEEN"):
			lo, err := p.parseLiteral()
			if err != nil {
				return nil, err
			}
			if !p.acceptKeyword("AND") {
				return nil, p.fail("AND in BETWEEN ... AND ...")
			}
			hi, err := p.parseLiteral()
			if err != nil {
				return nil, err
			}
			return Between{attr, lo, hi}, nil
		case p.acceptKeyword("EXISTS"):
			return Exists{attr}, nil
		case p.acceptWord("LIKE"):
			pat := p.peek()
			if pat.kind != tString {
				return nil, p.fail("a pattern in quotes after LIKE ('abc%')")
			}
			p.next()
			return parseLike(attr, pat.text, pat.pos)
		}
		return nil, p.fail("a comparison (=, !=, <, <=, >, >=), IN, BETWEEN, LIKE or EXISTS after " + strconv.Quote(attr))
	}
	return nil, p.fail("an attribute name, NOT, EXISTS or '('")
}

func parseOp(s string) Op {
	for i, n := range opNames {
		if n == s {
			return Op(i)
		}
	}
	return OpEq
}

// parseLiteral reads a string, number or boolean.
func (p *parser) parseLiteral() (any, error) {
	t := p.peek()
	switch t.kind {
	case tString:
		p.next()
		return t.text, nil
	case tNumber:
		p.next()
		if n, err := strconv.ParseInt(t.text, 10, 64); err == nil {
			return n, nil
		}
		f, err := strconv.ParseFloat(t.text, 64)
		if err != nil || f != f || f > 1.7976931348623157e308 || f < -1.7976931348623157e308 {
			return nil, &SyntaxError{t.pos, fmt.Sprintf("bad number %q", t.text)}
		}
		return f, nil
	case tKeyword:
		if t.text == "TRUE" || t.text == "FALSE" {
			p.next()
			return t.text == "TRUE", nil
		}
	}
	return nil, p.fail("a value ('text', a number, TRUE or FALSE)")
}

// Quote returns s as a quoted text of the statement language ('...',
// with any ' doubled): safe to put in a statement as an ID, a file path
// or a probe text.
func Quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
