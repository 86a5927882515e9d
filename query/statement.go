package query

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/mmdb-go/mmdb/fusion"
)

// Statement kinds.
const (
	StmtSearch = "SEARCH"
	StmtGet    = "GET"
	StmtDelete = "DELETE"
	StmtCount  = "COUNT"
	StmtAlign  = "ALIGN"
	// StmtCalibrate: CALIBRATE <probe> TO <target> [AUTO] [CENTRE]
	// [ALPHA <x>] [BETA <x>] [K <n>] [FORCE].
	StmtCalibrate = "CALIBRATE"
	// StmtDrop: DROP ALIGNMENT|CALIBRATION <from> TO <to>, DROP MODALITY
	// <name>.
	StmtDrop = "DROP"
)

// Statement is one parsed statement of the mmdb language:
//
//	SEARCH <target>[, <target>] NEAR <probe>[, <probe>] [FUSE rrf|weighted|dbsf|early|best_score]
//	       [WHERE <filter>] [LIMIT <k>] [OFFSET <n>] [SCORE >= <x>] [DISTANCE <= <x>]
//	       [EXCLUDE '<id>'[, '<id>']] [KEEP PROBES] [GROUP BY <attr> [PER <n>]] [EF <n>] [EXACT]
//	       (clauses in any order)
//	  probe: <modality> <source> [WEIGHT <w>]
//	  source: OF '<id>' | [<v1>, <v2>, ...] | FILE '<path>' | '<text>'
//	    (FILE and text are encoded by the modality's encoder)
//	GET '<id>'[, '<id>']
//	DELETE '<id>'[, '<id>'] | DELETE WHERE <filter>
//	COUNT [WHERE <filter>]
//	ALIGN <from> TO <to> [USING auto|ridge|procrustes|cca|infonce] [BY <attr>] [FORCE]
//	CALIBRATE <probe> TO <target> [AUTO] [CENTRE] [ALPHA <x>] [BETA <x>] [K <n>] [FORCE]
//	DROP ALIGNMENT|CALIBRATION <from> TO <to> | DROP MODALITY <name>
//	EXPLAIN [ANALYZE] <statement>
type Statement struct {
	Kind    string
	Explain bool
	Analyze bool
	Targets []string
	Probes  []StmtProbe
	Fuse    fusion.Method
	Filter  Expr
	Limit   int
	Ef      int
	Exact   bool
	// Offset skips hits (OFFSET n); Exclude lists IDs never returned
	// (EXCLUDE 'a', 'b'); MinScore and MaxDistance bound the hits
	// (SCORE >= x, DISTANCE <= x).
	Offset                int
	Exclude               []string
	MinScore, MaxDistance *float64
	// GroupBy and GroupSize: GROUP BY <attr> [PER <n>].
	GroupBy   string
	GroupSize int
	// KeepProbes: KEEP PROBES, a probe item in the target's modality may
	// be a hit (left out by default).
	KeepProbes bool
	IDs        []string // GET and DELETE
	// ALIGN: the modalities (From, To) and the method ("" for auto).
	From, To, Method string
	// Label: ALIGN ... BY <attr>, the attribute holding each item's class
	// for items paired by class ("" for none). BY is not reserved: an
	// attribute may still be called by.
	Label string
	// Force: ALIGN ... FORCE, a map even between modalities of one space,
	// or one that does not beat searching without it; CALIBRATE ... FORCE,
	// corrections stored even when they measure no better.
	Force bool
	// Drop: what DROP removes, "ALIGNMENT", "CALIBRATION" or "MODALITY"
	// (named by From).
	Drop string
	// CALIBRATE's candidates: Auto, Centre, Alpha and Beta (0: not asked),
	// K (0: the default).
	Auto, Centre bool
	Alpha, Beta  float64
	K            int
}

// StmtProbe is one probe of a SEARCH statement.
type StmtProbe struct {
	Modality string
	ItemID   string
	Vector   []float32
	// SetDim is, for a set of vectors written as a list of lists
	// ([[...], [...]]), the length of each; Vector holds them laid end to
	// end. 0 for one vector.
	SetDim int
	// File is a media file to encode (FILE '<path>'); Text a sentence
	// ('<text>').
	File   string
	Text   string
	Weight float32
}

// parseAlign reads ALIGN's modalities and options.
func (p *parser) parseAlign(st *Statement) error {
	var err error
	if st.From, err = p.parseName("the modality to align from"); err != nil {
		return err
	}
	if !p.acceptKeyword("TO") {
		return p.fail("TO")
	}
	if st.To, err = p.parseName("the modality to align to"); err != nil {
		return err
	}
	if p.acceptKeyword("USING") {
		if st.Method, err = p.parseName("a method: auto, ridge, procrustes, cca or infonce"); err != nil {
			return err
		}
	}
	if p.acceptWord("BY") {
		if st.Label, err = p.parseName("the label attribute"); err != nil {
			return err
		}
	}
	st.Force = p.acceptKeyword("FORCE")
	return nil
}

// parsePair reads "<from> TO <to>".
func (p *parser) parsePair(what string) (from, to string, err error) {
	if from, err = p.parseName(what); err != nil {
		return "", "", err
	}
	if !p.acceptKeyword("TO") {
		return "", "", p.fail("TO")
	}
	to, err = p.parseName("the target modality after TO")
	return from, to, err
}

// parseCalibrate reads CALIBRATE's options, in any order.
func (p *parser) parseCalibrate(st *Statement) error {
	for {
		var err error
		switch {
		case p.acceptWord("AUTO"):
			st.Auto = true
		case p.acceptWord("CENTRE"), p.acceptWord("CENTER"):
			st.Centre = true
		case p.acceptWord("ALPHA"):
			st.Alpha, err = p.parseFloat("a hubness weight after ALPHA")
		case p.acceptWord("BETA"):
			st.Beta, err = p.parseFloat("an inverse temperature after BETA")
		case p.acceptWord("K"):
			st.K, err = p.parseInt("the neighbours after K")
		case p.acceptKeyword("FORCE"):
			st.Force = true
		default:
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// parseIDs reads '<id>'[, '<id>' ...].
func (p *parser) parseIDs() ([]string, error) {
	var ids []string
	for {
		id, err := p.parseString("an item ID in quotes")
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
		if p.peek().kind != tComma {
			return ids, nil
		}
		p.next()
	}
}

// ParseStatement parses one statement; a trailing ';' is allowed.
func ParseStatement(s string) (*Statement, error) {
	toks, err := lex(s)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks, src: s}
	st := &Statement{}
	if p.acceptKeyword("EXPLAIN") {
		st.Explain = true
		st.Analyze = p.acceptKeyword("ANALYZE")
	}
	switch {
	case p.acceptKeyword("SEARCH"):
		st.Kind = StmtSearch
		err = p.parseSearch(st)
	case p.acceptKeyword("GET"):
		st.Kind = StmtGet
		st.IDs, err = p.parseIDs()
	case p.acceptKeyword("DELETE"):
		st.Kind = StmtDelete
		if p.acceptKeyword("WHERE") {
			st.Filter, err = p.parseOr()
		} else {
			st.IDs, err = p.parseIDs()
		}
	case p.acceptKeyword("COUNT"):
		st.Kind = StmtCount
		if p.acceptKeyword("WHERE") {
			st.Filter, err = p.parseOr()
		}
	case p.acceptKeyword("ALIGN"):
		st.Kind = StmtAlign
		err = p.parseAlign(st)
	case p.acceptWord("CALIBRATE"):
		st.Kind = StmtCalibrate
		if st.From, st.To, err = p.parsePair("the probe modality"); err == nil {
			err = p.parseCalibrate(st)
		}
	case p.acceptWord("DROP"):
		st.Kind = StmtDrop
		switch {
		case p.acceptWord("ALIGNMENT"):
			st.Drop = "ALIGNMENT"
		case p.acceptWord("CALIBRATION"):
			st.Drop = "CALIBRATION"
		case p.acceptWord("MODALITY"):
			st.Drop = "MODALITY"
			st.From, err = p.parseName("the modality to drop")
		default:
			err = p.fail("ALIGNMENT, CALIBRATION or MODALITY after DROP")
		}
		if err == nil && st.Drop != "MODALITY" {
			st.From, st.To, err = p.parsePair("a modality")
		}
	default:
		return nil, p.fail("SEARCH, GET, DELETE, COUNT, ALIGN, CALIBRATE, DROP or EXPLAIN")
	}
	if err != nil {
		return nil, err
	}
	if p.peek().kind == tSemi {
		p.next()
	}
	if p.peek().kind != tEOF {
		return nil, p.fail("end of statement")
	}
	if st.Filter != nil {
		if err := Validate(st.Filter); err != nil {
			return nil, err
		}
	}
	return st, nil
}

func (p *parser) parseString(want string) (string, error) {
	t := p.peek()
	if t.kind == tIdent && t.pos < len(p.src) && p.src[t.pos] == '"' {
		return "", &SyntaxError{t.pos, fmt.Sprintf("expected %s: texts and IDs take single quotes ('%s'); double quotes name attributes", want, t.text)}
	}
	if t.kind != tString {
		return "", p.fail(want)
	}
	p.next()
	return t.text, nil
}

func (p *parser) parseName(want string) (string, error) {
	t := p.peek()
	if t.kind != tIdent {
		return "", p.fail(want)
	}
	p.next()
	return t.text, nil
}

func (p *parser) parseInt(want string) (int, error) {
	t := p.peek()
	if t.kind != tNumber {
		return 0, p.fail(want)
	}
	n, err := strconv.Atoi(t.text)
	if err != nil || n <= 0 {
		return 0, &SyntaxError{t.pos, fmt.Sprintf("%s must be a positive integer, not %s", want, t.text)}
	}
	p.next()
	return n, nil
}

func (p *parser) parseFloat(want string) (float64, error) {
	t := p.peek()
	if t.kind != tNumber {
		return 0, p.fail(want)
	}
	f, err := strconv.ParseFloat(t.text, 32)
	if err != nil {
		return 0, &SyntaxError{t.pos, fmt.Sprintf("bad number %q", t.text)}
	}
	p.next()
	return f, nil
}

func (p *parser) parseSearch(st *Statement) error {
	for {
		name, err := p.parseName("a target modality")
		if err != nil {
			return err
		}
		st.Targets = append(st.Targets, name)
		if p.peek().kind != tComma {
			break
		}
		p.next()
	}
	if !p.acceptKeyword("NEAR") {
		return p.fail("NEAR")
	}
	for {
		var pr StmtProbe
		var err error
		if pr.Modality, err = p.parseName("a probe modality"); err != nil {
			return err
		}
		switch {
		case p.acceptKeyword("OF"):
			if pr.ItemID, err = p.parseString("an item ID in quotes after OF"); err != nil {
				return err
			}
		case p.peek().kind == tLBracket:
			if pr.Vector, pr.SetDim, err = p.parseVectors(); err != nil {
				return err
			}
		case p.acceptWord("FILE"):
			if pr.File, err = p.parseString("a file path in quotes after FILE"); err != nil {
				return err
			}
			if pr.File == "" {
				return fmt.Errorf("%w: FILE '' names no file", ErrSyntax)
			}
		case p.peek().kind == tString:
			if pr.Text, err = p.parseString("a text in quotes"); err != nil {
				return err
			}
			if pr.Text == "" {
				return fmt.Errorf("%w: an empty text probe ('') says nothing to search for", ErrSyntax)
			}
		default:
			return p.fail("OF '<id>', a vector [ ... ], FILE '<path>' or a text in quotes after the probe modality")
		}
		if p.acceptKeyword("WEIGHT") {
			w, err := p.parseFloat("a weight")
			if err != nil {
				return err
			}
			pr.Weight = float32(w)
		}
		st.Probes = append(st.Probes, pr)
		if p.peek().kind != tComma {
			break
		}
		p.next()
	}
	return p.parseSearchClauses(st)
}

// parseSearchClauses reads the clauses after a SEARCH's probes, in any
// order, each at most once.
func (p *parser) parseSearchClauses(st *Statement) error {
	seen := map[string]bool{}
	for {
		if t := p.peek(); t.kind == tKeyword || t.kind == tIdent && clauseWords[strings.ToUpper(t.text)] {
			w := strings.ToUpper(t.text)
			if seen[w] {
				return &SyntaxError{t.pos, w + " given twice"}
			}
			seen[w] = true
		}
		switch {
		case p.acceptKeyword("FUSE"):
			t := p.peek()
			if t.kind != tIdent || !fusion.Valid(fusion.Method(strings.ToLower(t.text))) {
				return p.fail("rrf, weighted, dbsf, early or best_score after FUSE")
			}
			p.next()
			st.Fuse = fusion.Method(strings.ToLower(t.text))
		case p.acceptKeyword("WHERE"):
			f, err := p.parseOr()
			if err != nil {
				return err
			}
			st.Filter = f
		case p.acceptKeyword("LIMIT"):
			n, err := p.parseInt("LIMIT")
			if err != nil {
				return err
			}
			st.Limit = n
		case p.acceptKeyword("EF"):
			n, err := p.parseInt("EF")
			if err != nil {
				return err
			}
			st.Ef = n
		case p.acceptKeyword("EXACT"):
			st.Exact = true
		case p.acceptWord("OFFSET"):
			t := p.peek()
			n, err := strconv.Atoi(t.text)
			if t.kind != tNumber || err != nil || n < 0 {
				return p.fail("a whole number of hits to skip after OFFSET")
			}
			p.next()
			st.Offset = n
		case p.acceptWord("EXCLUDE"):
			ids, err := p.parseIDs()
			if err != nil {
				return err
			}
			st.Exclude = ids
		case p.acceptWord("KEEP"):
			if !p.acceptWord("PROBES") {
				return p.fail("PROBES after KEEP")
			}
			st.KeepProbes = true
		case p.acceptWord("GROUP"):
			if !p.acceptWord("BY") {
				return p.fail("BY after GROUP")
			}
			attr, err := p.parseName("an attribute after GROUP BY")
			if err != nil {
				return err
			}
			st.GroupBy, st.GroupSize = attr, 1
			if p.acceptWord("PER") {
				if st.GroupSize, err = p.parseInt("the hits per group after PER"); err != nil {
					return err
				}
			}
		case p.acceptWord("SCORE"):
			x, err := p.parseBound(">=", "SCORE >= <number>: the least score a hit may have")
			if err != nil {
				return err
			}
			st.MinScore = &x
		case p.acceptWord("DISTANCE"):
			x, err := p.parseBound("<=", "DISTANCE <= <number>: the farthest a hit may be")
			if err != nil {
				return err
			}
			st.MaxDistance = &x
		default:
			return nil
		}
	}
}

// clauseWords are the SEARCH clauses that are not reserved words (so
// that attributes may still be called score or offset).
var clauseWords = map[string]bool{"OFFSET": true, "EXCLUDE": true, "SCORE": true, "DISTANCE": true, "GROUP": true, "KEEP": true}

// parseBound reads "<op> <number>" of a SCORE or DISTANCE clause.
func (p *parser) parseBound(op, want string) (float64, error) {
	if t := p.peek(); t.kind != tOp || t.text != op {
		return 0, p.fail(want)
	}
	p.next()
	return p.parseFloat(want)
}

// parseVectors reads a vector [x, ...] or a set of them [[x, ...], ...],
// laid end to end, with the length of each vector of a set.
func (p *parser) parseVectors() (v []float32, setDim int, err error) {
	p.next() // [
	if p.peek().kind != tLBracket {
		v, err = p.parseNumbers()
		return v, 0, err
	}
	for {
		p.next() // [
		one, err := p.parseNumbers()
		if err != nil {
			return nil, 0, err
		}
		if setDim == 0 {
			setDim = len(one)
		} else if len(one) != setDim {
			return nil, 0, fmt.Errorf("%w: vector %d of the set has %d values, the first %d", ErrSyntax, len(v)/setDim, len(one), setDim)
		}
		v = append(v, one...)
		switch p.peek().kind {
		case tComma:
			p.next()
			if p.peek().kind != tLBracket {
				return nil, 0, p.fail("'[' (the next vector of the set)")
			}
			continue
		case tRBracket:
			p.next()
			return v, setDim, nil
		}
		return nil, 0, p.fail("',' or ']'")
	}
}

// parseNumbers reads numbers up to and including the closing ']'.
func (p *parser) parseNumbers() ([]float32, error) {
	var v []float32
	for {
		f, err := p.parseFloat("a number")
		if err != nil {
			return nil, err
		}
		v = append(v, float32(f))
		if p.peek().kind == tComma {
			p.next()
			continue
		}
		if p.peek().kind != tRBracket {
			return nil, p.fail("',' or ']'")
		}
		p.next()
		return v, nil
	}
}
