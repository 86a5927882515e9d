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

// decodeRecord parses one line strictly: unknown fields, a missing ID and
// non-numeric vector entries are errors, and JSON numbers in attributes
// become int64 when written without a fraction or exponent (2, -7), and
// float64 otherwise (2.0, 1e3, 0.5).
func decodeRecord(line []byte) (mmdb.Item, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	var r Record
	if err := dec.Decode(&r); err != nil {
		return mmdb.Item{}, err
	}
	if dec.More() {
		return mmdb.Item{}, errors.New("more than one JSON value on the line")
	}
	if r.ID == "" {
		return mmdb.Item{}, errors.New(`missing "id"`)
	}
	for k, v := range r.Attrs {
		a, err := attrValue(v)
		if err != nil {
			return mmdb.Item{}, fmt.Errorf("attribute %q: %w", k, err)
		}
		r.Attrs[k] = a
	}
	return mmdb.Item{ID: r.ID, Attrs: r.Attrs, Vectors: r.Vectors}, nil
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
		return nil, errors.New("null is not a value; leave the attribute out")
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
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		it, err := decodeRecord(b)
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
	for it, err := range db.Items(ctx) {
		if err != nil {
			return n, err
		}
		if err := enc.Encode(Record{ID: it.ID, Attrs: exportAttrs(it.Attrs), Vectors: it.Vectors}); err != nil {
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
