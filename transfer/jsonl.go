package transfer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/mmdb-go/mmdb/internal/jsonvec"

	"github.com/mmdb-go/mmdb"
)

// Record is one line of a JSONL file: an item.
//
//	{"id": "dog-1", "attrs": {"year": 2014, "tags": ["dog"]}, "vectors": {"image": [0.1, ...]}}
type Record struct {
	ID      string               `json:"id"`
	Attrs   map[string]any       `json:"attrs,omitempty"`
	Vectors map[string][]float32 `json:"vectors"`
}

// decodeRecord parses one line strictly: the line must be valid UTF-8 and
// hold no \u escape of half a surrogate pair (either is an error, never a
// silent U+FFFD), keys must be exactly
// "id", "attrs" and "vectors" and appear once, vectors must hold numbers
// only (null is an error, not 0), and JSON numbers in attributes become
// int64 when written without a fraction or exponent (2, -7), and float64
// otherwise (2.0, 1e3, 0.5). With merge, a null attribute is kept as nil:
// Merge removes that attribute.
//
// A vector may also be a list of lists of numbers: the set of a
// multi-vector modality, which sets gives by name. Each list must hold Dim numbers; the set is stored laid end to
// end.
func decodeRecord(line []byte, merge bool, sets map[string]mmdb.Modality) (mmdb.Item, error) {
	if !utf8.Valid(line) {
		return mmdb.Item{}, fmt.Errorf("invalid UTF-8 at byte %d", invalidAt(line))
	}
	if err := jsonvec.CheckEscapes(line); err != nil {
		return mmdb.Item{}, fmt.Errorf("%w: JSON would read it as U+FFFD", err)
	}
	var it mmdb.Item
	hasID := false
	err := jsonvec.Fields(line, func(key string, raw json.RawMessage) error {
		switch key {
		case "id":
			hasID = true
			if err := json.Unmarshal(raw, &it.ID); err != nil {
				return fmt.Errorf(`"id" must be a string`)
			}
		case "attrs":
			a, err := decodeAttrs(raw, merge)
			if err != nil {
				return err
			}
			it.Attrs = a
		case "vectors":
			if string(bytes.TrimSpace(raw)) == "null" {
				return nil // what the export writes for an item without vectors
			}
			it.Vectors = map[string][]float32{}
			return jsonvec.Fields(raw, func(mod string, raw json.RawMessage) error {
				v, err := parseVector(raw, mod, sets)
				if err != nil {
					return fmt.Errorf("vector %q: %w", mod, err)
				}
				it.Vectors[mod] = v
				return nil
			})
		default:
			return fmt.Errorf("unknown key %q (keys are \"id\", \"attrs\" and \"vectors\", in lower case)", key)
		}
		return nil
	})
	if err != nil {
		return mmdb.Item{}, err
	}
	if !hasID || it.ID == "" {
		return mmdb.Item{}, errors.New(`missing "id"`)
	}
	return it, nil
}

// parseVector parses a vector: a list of numbers or, for a multi-vector
// modality, a list of lists of Dim numbers each.
func parseVector(raw json.RawMessage, mod string, sets map[string]mmdb.Modality) ([]float32, error) {
	if !jsonvec.Nested(raw) {
		return jsonvec.ParseFloats(raw)
	}
	m, ok := sets[mod]
	if !ok {
		return nil, fmt.Errorf("a list of lists is a set of vectors, and %q is not a multi-vector modality of this database", mod)
	}
	dim := m.Dim
	var lists []json.RawMessage
	if err := json.Unmarshal(raw, &lists); err != nil {
		return nil, fmt.Errorf("not a list of lists of numbers: %v", err)
	}
	if len(lists) == 0 || len(lists) > mmdb.MaxSet {
		return nil, fmt.Errorf("a set of %d vectors (1 to %d)", len(lists), mmdb.MaxSet)
	}
	out := make([]float32, 0, len(lists)*dim)
	for j, l := range lists {
		v, err := jsonvec.ParseFloats(l)
		if err != nil {
			return nil, fmt.Errorf("vector %d of the set: %w", j, err)
		}
		if len(v) != dim {
			return nil, fmt.Errorf("vector %d of the set has %d values, %q wants %d: %w", j, len(v), mod, dim, mmdb.ErrDimension)
		}
		out = append(out, v...)
	}
	return out, nil
}

// setModalities maps db's multi-vector modalities by name.
func setModalities(db *mmdb.DB) map[string]mmdb.Modality {
	out := map[string]mmdb.Modality{}
	for _, m := range db.Modalities() {
		if m.IsMulti() {
			out[m.Name] = m
		}
	}
	return out
}

func decodeAttrs(raw json.RawMessage, merge bool) (map[string]any, error) {
	if string(bytes.TrimSpace(raw)) == "null" {
		return nil, nil
	}
	out := map[string]any{}
	err := jsonvec.Fields(raw, func(k string, raw json.RawMessage) error {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return fmt.Errorf("attribute %q: %w", k, err)
		}
		if v == nil && merge {
			out[k] = nil // Merge removes it
			return nil
		}
		a, err := attrValue(v)
		if err != nil {
			return fmt.Errorf("attribute %q: %w", k, err)
		}
		out[k] = a
		return nil
	})
	return out, err
}

// invalidAt returns the offset of the first byte of b that is not valid
// UTF-8.
func invalidAt(b []byte) int {
	for i := 0; i < len(b); {
		r, w := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && w <= 1 {
			return i
		}
		i += w
	}
	return len(b)
}

func attrValue(v any) (any, error) {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i, nil
		}
		f, err := x.Float64()
		if err != nil || math.IsInf(f, 0) {
			return nil, fmt.Errorf("number %s is out of range", x)
		}
		return f, nil
	case string, bool:
		return x, nil
	case []any:
		out := make([]string, len(x))
		for i, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("lists must hold strings only, element %d is %T", i, e)
			}
			out[i] = s
		}
		return out, nil
	case nil:
		return nil, errors.New("null is not a value: leave the attribute out (with --replace), or merge to remove it")
	}
	return nil, fmt.Errorf("%T values are not supported (strings, numbers, bools and string lists are)", v)
}

// MaxLine is the longest JSONL line read: room for a few 16k-float
// vectors.
const MaxLine = 64 << 20

// ImportJSONL reads items from r, one JSON object per line (blank lines
// are skipped), and stores them in batches. name labels errors
// ("items.jsonl:12: ...").
func ImportJSONL(ctx context.Context, db *mmdb.DB, r io.Reader, name string, o Options) (Report, error) {
	rep := Report{File: name}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<20), MaxLine)
	var batch []mmdb.Item
	var lines []int
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		n, err := putBatch(ctx, db, batch, o.Replace, o.SkipBad, func(i int, err error) {
			rep.skip(fmt.Errorf("%s:%d: %w", name, lines[i], err))
		})
		if err != nil {
			var ie *mmdb.ItemError
			if errors.As(err, &ie) && ie.Index < len(lines) {
				hint := ""
				if errors.Is(err, mmdb.ErrUnknownModality) {
					hint = "; define the modality first (an export's FILE.schema.json beside the file does it, or .define in the shell)"
				}
				return fmt.Errorf("%s:%d: %w (nothing of lines %d-%d was stored%s)", name, lines[ie.Index], err, lines[0], lines[len(lines)-1], hint)
			}
			return fmt.Errorf("%s: lines %d-%d: %w", name, lines[0], lines[len(lines)-1], err)
		}
		rep.Imported += n
		batch, lines = batch[:0], lines[:0]
		if o.Progress != nil {
			o.Progress(rep.Imported, 0)
		}
		return nil
	}
	line := 0
	sets := setModalities(db)
	seen := map[string]int{} // ID -> the line that gave it
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		it, err := decodeRecord(b, !o.Replace, sets)
		if err == nil {
			if first, dup := seen[it.ID]; dup {
				err = fmt.Errorf("item %q appears again (first on line %d); one import stores an ID once", it.ID, first)
			} else {
				seen[it.ID] = line
			}
		}
		if err != nil {
			err = fmt.Errorf("%w: %s:%d: %v", ErrBadRecord, name, line, err)
			if !o.SkipBad {
				return rep, err
			}
			rep.skip(err)
			continue
		}
		batch = append(batch, it)
		lines = append(lines, line)
		if len(batch) >= o.batch() {
			if err := flush(); err != nil {
				return rep, err
			}
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return rep, fmt.Errorf("%w: %s:%d: line longer than %d bytes", ErrBadRecord, name, line+1, MaxLine)
		}
		return rep, fmt.Errorf("%s: %w", name, err)
	}
	if err := flush(); err != nil {
		return rep, err
	}
	if o.Progress != nil {
		o.Progress(rep.Imported, rep.Imported) // done: a bar can finish
	}
	return rep, nil
}

// ExportJSONL writes every item as one JSON line, in insertion order, and
// returns how many it wrote.
func ExportJSONL(ctx context.Context, db *mmdb.DB, w io.Writer, progress func(done, total int)) (int, error) {
	bw := bufio.NewWriterSize(w, 1<<20)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	n, total := 0, db.Count()
	multi := setModalities(db)
	for it, err := range db.Items(ctx) {
		if err != nil {
			return n, err
		}
		var rec any = Record{ID: it.ID, Attrs: exportAttrs(it.Attrs), Vectors: it.Vectors}
		if len(multi) > 0 {
			// Sets are written as lists of vectors, as Qdrant and
			// LanceDB write multivectors.
			vecs := make(map[string]any, len(it.Vectors))
			for name, v := range it.Vectors {
				if m, ok := multi[name]; ok {
					vecs[name] = m.Split(v)
				} else {
					vecs[name] = v
				}
			}
			rec = struct {
				ID      string         `json:"id"`
				Attrs   map[string]any `json:"attrs,omitempty"`
				Vectors map[string]any `json:"vectors"`
			}{it.ID, exportAttrs(it.Attrs), vecs}
		}
		if err := enc.Encode(rec); err != nil {
			return n, err
		}
		n++
		if progress != nil && n%1000 == 0 {
			progress(n, total)
		}
	}
	if progress != nil {
		progress(n, total)
	}
	return n, bw.Flush()
}

// exportAttrs writes whole float64 values with a ".0" so that an import,
// which reads numbers without a fraction or exponent as int64, gives them
// back as float64.
func exportAttrs(a map[string]any) map[string]any {
	var out map[string]any
	for k, v := range a {
		f, ok := v.(float64)
		if !ok || f != math.Trunc(f) || math.Abs(f) >= 1e21 {
			continue
		}
		if out == nil {
			out = maps.Clone(a)
		}
		out[k] = json.Number(strconv.FormatFloat(f, 'f', 1, 64))
	}
	if out == nil {
		return a
	}
	return out
}
