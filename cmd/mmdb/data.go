package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/mmdb-go/mmdb"
	"github.com/mmdb-go/mmdb/encoder"
	"github.com/mmdb-go/mmdb/query"
	"github.com/mmdb-go/mmdb/transfer"
	"github.com/spf13/cobra"
)

func queryCmd() *cobra.Command {
	c := newCmd("query DB STATEMENT", "run one statement and print the result",
		"Runs one statement of the mmdb language (SEARCH, GET, DELETE, COUNT, ALIGN, CALIBRATE, DROP,\n"+
			"EXPLAIN [ANALYZE]); the shell's .help lists their clauses.",
		"mmdb query media.mmdb \"SEARCH image NEAR text OF 'dog-1' WHERE year >= 2010 LIMIT 5\"\n"+
			"  mmdb query media.mmdb \"SEARCH image NEAR text OF 'dog-1' LIMIT 10 OFFSET 10 SCORE >= 0.2\"\n"+
			"  mmdb query media.mmdb \"SEARCH image NEAR image OF 'dog-1' GROUP BY label PER 2 EXCLUDE 'dog-2'\"\n"+
			"  mmdb query media.mmdb \"SEARCH image NEAR text OF 'dog-1', text OF 'cat-1' WEIGHT -1\"\n"+
			"  mmdb query media.mmdb \"SEARCH audio NEAR image FILE 'dog.png' LIMIT 5\"\n"+
			"  mmdb query media.mmdb \"DELETE WHERE name LIKE 'tmp-%'\"\n"+
			"  mmdb query media.mmdb \"CALIBRATE text TO image AUTO\"", 2)
	mode := c.Flags().String("mode", "table", "output: table, json or csv")
	asJSON := jsonFlag(c)
	lowMem := lowMemoryFlag(c)
	c.RunE = func(c *cobra.Command, args []string) error {
		if *asJSON {
			*mode = "json"
		}
		if !validMode(*mode) {
			return fmt.Errorf("%w: --mode must be table, json or csv", errUsage)
		}
		if err := mustExist(args[0]); err != nil {
			return err
		}
		// Statements that only read open the file shared, so several can
		// run at once while no writer holds it.
		st, err := query.ParseStatement(args[1])
		if err != nil {
			return withCaret(fmt.Errorf("%w: %w", mmdb.ErrInvalidQuery, err), args[1])
		}
		readOnly := st.Kind == query.StmtSearch || st.Kind == query.StmtGet || st.Kind == query.StmtCount
		db, err := mmdb.Open(args[0], &mmdb.Options{ReadOnly: readOnly, Progress: progressFunc(c.ErrOrStderr()), LowMemory: *lowMem})
		if err != nil {
			return err
		}
		defer db.Close()
		res, err := db.Query(c.Context(), args[1])
		if err != nil {
			if res != nil { // an ALIGN that stored nothing: its report says why
				if rerr := render(c.OutOrStdout(), res, renderOptions{mode: *mode}); rerr != nil {
					return rerr
				}
			}
			return withCaret(err, args[1])
		}
		return render(c.OutOrStdout(), res, renderOptions{mode: *mode})
	}
	return c
}

func importCmd() *cobra.Command {
	c := newCmd("import DB FILE...", "import items from JSONL, NPY or Parquet files, or folders of WAV/PNG/JPEG",
		"Imports JSON Lines files ({\"id\": ..., \"attrs\": {...}, \"vectors\": {\"image\": [...]}} per line)\n"+
			"and NumPy .npy matrices (one modality's vectors, --modality; IDs from --ids, one per line,\n"+
			"or row numbers; for a multi-vector modality a stack (N, S, D) without --index gives N sets\n"+
			"of S vectors), Parquet files written by export, and folders of media: each file is\n"+
			"encoded by the modality's encoder (--modality names it; a missing modality is defined with\n"+
			"the built-in encoder the files call for: WAV files become MFCC vectors, PNG/JPEG pictures\n"+
			"pixel and gradient features). The first import fits the features' standardisation and\n"+
			"stores it with the modality; later imports and query-time probes apply it unchanged, so a\n"+
			"file always gives the same vector. --refit fits it again on the folder and every stored\n"+
			"vector's source file (the <modality>_file attribute), re-encoding them all in one\n"+
			"transaction, or refuses naming the files that are gone; it also gives the built-in encoder\n"+
			"to a modality that has none (an older import). Alignments and calibrations of a refitted\n"+
			"modality are dropped: ALIGN again.\n"+
			"Each batch is atomic; by default the first bad line stops the import,\n"+
			"--skip-bad stores the good lines and counts the bad ones. A schema file written by export\n"+
			"(FILE.schema.json) defines missing modalities (--schema names one). FILE - reads JSON lines\n"+
			"from stdin.\n\n"+
			"A record for an ID that is already stored is merged into it: its vectors replace those\n"+
			"modalities and the item's other modalities are kept; its attributes replace those of the\n"+
			"same names (null removes one) and the others are kept. So {\"id\":\"a\",\"attrs\":{\"label\":\"x\"}}\n"+
			"relabels item a and keeps its vectors. --replace stores each record as the whole item\n"+
			"instead. An ID given twice in one import, invalid UTF-8, keys in another case and null or\n"+
			"non-numbers in vectors are errors naming the file and line.\n\n"+
			"A media folder stores each file's path as the attribute <modality>_file (audio_file,\n"+
			"image_file, ...), so importing pictures and recordings into the same IDs keeps both; two\n"+
			"files giving one ID (c.wav and c.WAV, a.png and a.jpg) are an error. Only PNG, JPEG and\n"+
			"PCM WAV are read (up to 50 megapixels, 2^24 audio frames, 128 MiB a file); FIFOs, devices\n"+
			"and links to them are skipped and counted. Parquet with LZ4 columns is refused (its decoder\n"+
			"has no bound on a damaged file); export writes Zstandard.",
		"mmdb import media.mmdb items.jsonl\n  mmdb import --modality image --ids ids.txt media.mmdb image.npy\n  mmdb import --modality caption --define --space clip --index 1 media.mmdb features.npy\n  mmdb import --modality speech media.mmdb recordings/\n  mmdb import --schema items.jsonl.schema.json new.mmdb - < items.jsonl", -1)
	modality := c.Flags().String("modality", "", "for .npy files and media folders: the modality the vectors belong to")
	idsFile := c.Flags().String("ids", "", "for .npy files: a text file with one ID per row")
	skipBad := c.Flags().Bool("skip-bad", false, "import the good records and report how many were skipped")
	replace := c.Flags().Bool("replace", false, "store each record as the whole item, removing attributes and modalities it lacks (default: merge into the stored item)")
	batch := c.Flags().Int("batch", transfer.DefaultBatch, "items per atomic batch")
	var nf npyFlags
	c.Flags().IntVar(&nf.index, "index", -1, "for .npy files of shape (L, N, D): which of the L matrices to import")
	c.Flags().BoolVar(&nf.define, "define", false, "for .npy files: define the modality if missing, of the file's dimension (--metric, --space)")
	c.Flags().StringVar(&nf.metric, "metric", "cosine", "with --define: cosine, dot or l2")
	c.Flags().StringVar(&nf.space, "space", "", "with --define: the embedding space")
	schema := c.Flags().String("schema", "", "a schema file (written by export) defining the modalities first; for stdin (-), whose side file cannot be found")
	refit := c.Flags().Bool("refit", false, "for media folders: fit the standardisation again and re-encode every stored vector of the modality from its file")
	asJSON := jsonFlag(c)
	c.RunE = func(c *cobra.Command, args []string) error {
		if len(args) < 2 {
			return fmt.Errorf("%w: want DB and at least one FILE (see --help)", errUsage)
		}
		db, err := mmdb.Open(args[0], &mmdb.Options{Progress: progressFunc(c.ErrOrStderr())})
		if err != nil {
			return err
		}
		defer db.Close()
		var reps []transfer.Report
		if *schema != "" {
			if _, err := os.Stat(*schema); err != nil {
				return fmt.Errorf("%w: --schema: %w", errUsage, err)
			}
			if err := transfer.ApplySchemaFile(db, *schema); err != nil {
				return err
			}
		}
		for _, f := range args[1:] {
			o := transfer.Options{Batch: *batch, SkipBad: *skipBad, Replace: *replace, Progress: counter(c.ErrOrStderr(), "import "+filepath.Base(f))}
			if f == "-" { // JSON lines on stdin
				rep, err := transfer.ImportJSONL(c.Context(), db, c.InOrStdin(), "stdin", o)
				reps = append(reps, rep)
				if err != nil {
					return err
				}
				continue
			}
			rep, err := importFile(c.Context(), db, f, *modality, *idsFile, *refit, o, nf)
			reps = append(reps, rep)
			if err != nil {
				return err
			}
		}
		var text strings.Builder
		for _, r := range reps {
			fmt.Fprintln(&text, r.String())
			for _, e := range r.Errors {
				fmt.Fprintln(&text, "  ", e)
			}
		}
		return report(c.OutOrStdout(), *asJSON, reps, text.String())
	}
	return c
}

// npyFlags are import's flags for .npy files.
type npyFlags struct {
	index         int
	define        bool
	metric, space string
}

func importFile(ctx context.Context, db *mmdb.DB, path, modality, idsFile string, refit bool, o transfer.Options, nf npyFlags) (transfer.Report, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return importFolder(ctx, db, path, modality, refit, o)
	}
	if refit {
		return transfer.Report{File: path}, fmt.Errorf("%w: %s: --refit is for folders of media", errUsage, path)
	}
	if err := transfer.ApplySchemaFile(db, path+".schema.json"); err != nil {
		return transfer.Report{File: path}, err
	}
	if _, err := os.Stat(path + ".schema.json"); err != nil {
		for _, m := range db.Modalities() {
			// An .npy file fills one modality; other files may fill any.
			if m.Encoder != nil && (modality == "" || m.Name == modality) {
				fmt.Fprintf(os.Stderr, "warning: %s has no schema side file (%s.schema.json): vectors it gives modality %s, made by %s here, are stored as given and compare only if they were made the same way\n", path, filepath.Base(path), m.Name, m.Encoder)
			}
		}
	}
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
		return transfer.Report{File: path}, fmt.Errorf("%w: %s is not a regular file or a folder", errUsage, path)
	}
	f, err := os.Open(path)
	if err != nil {
		return transfer.Report{File: path}, err
	}
	defer f.Close()
	switch strings.ToLower(filepath.Ext(path)) {
	case ".npy":
		if modality == "" {
			return transfer.Report{File: path}, fmt.Errorf("%w: %s: an .npy file needs --modality", errUsage, path)
		}
		var ids []string
		if idsFile != "" {
			g, err := os.Open(idsFile)
			if err != nil {
				return transfer.Report{File: path}, err
			}
			ids, err = transfer.ReadIDs(g, idsFile)
			g.Close()
			if err != nil {
				return transfer.Report{File: path}, err
			}
		}
		no := transfer.NPYOptions{Options: o, Index: nf.index}
		if nf.define {
			met, err := parseMetric(nf.metric)
			if err != nil {
				return transfer.Report{File: path}, fmt.Errorf("%w: %v", errUsage, err)
			}
			no.Define = &mmdb.Modality{Metric: met, Space: nf.space}
		}
		return transfer.ImportNPYWith(ctx, db, f, path, modality, ids, no)
	case ".jsonl", ".ndjson", ".json":
		return transfer.ImportJSONL(ctx, db, f, path, o)
	case ".parquet":
		return transfer.ImportParquet(ctx, db, f, path, o)
	}
	return transfer.Report{File: path}, fmt.Errorf("%w: %s: unknown format (want .jsonl, .ndjson, .npy, .parquet or a folder of media)", errUsage, path)
}

// importFolder encodes a folder of media with the modality's encoder; a
// missing modality is defined with the built-in encoder the files call
// for: WAV files as MFCCs, PNG/JPEG as pixel and gradient features.
func importFolder(ctx context.Context, db *mmdb.DB, dir, modality string, refit bool, o transfer.Options) (transfer.Report, error) {
	if modality == "" {
		return transfer.Report{File: dir}, fmt.Errorf("%w: %s: a folder needs --modality", errUsage, dir)
	}
	// The files decide the built-in encoder: any WAV under the folder means audio.
	spec := &encoder.Spec{Kind: encoder.KindImage}
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.EqualFold(filepath.Ext(p), ".wav") {
			spec.Kind = encoder.KindMFCC
			return filepath.SkipAll
		}
		return nil
	})
	mo := transfer.MediaOptions{Options: o, Refit: refit,
		Define: &mmdb.Modality{Name: modality, Metric: mmdb.Cosine, Encoder: spec}}
	for _, m := range db.Modalities() {
		if m.Name == modality && m.Encoder == nil && refit {
			if m.IsMulti() && spec.Kind == encoder.KindImage {
				spec.Image = &encoder.Image{Patches: true} // a set of pictures' patches
			}
			mo.Encoder = spec // an older import's modality: give it the encoder
		}
	}
	return transfer.ImportMedia(ctx, db, dir, modality, mo)
}

func exportCmd() *cobra.Command {
	c := newCmd("export DB OUT", "export every item to JSONL or Parquet, or for Milvus or LanceDB",
		"Writes every item to OUT: as JSON lines (OUT - for stdout), or, when OUT ends in .parquet, as\n"+
			"Parquet rows (id, attrs as a JSON string, one nullable float32 list column per modality) that\n"+
			"'mmdb import' reads back. The schema goes to OUT.schema.json so that 'mmdb import' can recreate\n"+
			"the modalities (to stderr for OUT -). Other extensions are refused.\n\n"+
			"With --for lancedb or --for milvus, OUT is a folder, and each modality becomes a Parquet file\n"+
			"that the engine loads as it is: the items carrying that modality (no null vectors), an id\n"+
			"column, the vector column (LanceDB: FixedSizeList<float32, dim> named vector; Milvus: a\n"+
			"float list), a typed column per attribute whose values share one type (nullable where some\n"+
			"items lack it) and the rest as a JSON object in attrs, with names mapped to what the engine\n"+
			"accepts (the mapping is printed). For Milvus, MODALITY.collection.json beside each file is\n"+
			"the create-collection request (REST v2) whose schema matches it. Multi-vector modalities are\n"+
			"refused by name (export them as JSONL).",
		"mmdb export media.mmdb items.jsonl\n  mmdb export media.mmdb items.parquet\n  mmdb export --for lancedb media.mmdb lance-export/\n  mmdb export --for milvus --collection media media.mmdb milvus-export/", 2)
	asJSON := jsonFlag(c)
	target := c.Flags().String("for", "", "lay the export out for a distributed engine: lancedb or milvus (OUT is then a folder)")
	mods := c.Flags().StringSlice("modality", nil, "with --for: export only these modalities (default: every single-vector one)")
	collection := c.Flags().String("collection", "mmdb", "with --for milvus: the collections' name prefix (PREFIX_MODALITY)")
	c.RunE = func(c *cobra.Command, args []string) error {
		db, err := mmdb.Open(args[0], &mmdb.Options{ReadOnly: true})
		if err != nil {
			return err
		}
		defer db.Close()
		if *target != "" {
			if *target == string(transfer.LanceDB) && c.Flags().Changed("collection") {
				return fmt.Errorf("%w: --collection names Milvus collections; LanceDB tables are named when they are created", errUsage)
			}
			return exportFor(c.Context(), db, args[1], *target, &transfer.ForOptions{Modalities: *mods, Collection: *collection},
				c.OutOrStdout(), c.ErrOrStderr(), *asJSON)
		}
		if len(*mods) > 0 || c.Flags().Changed("collection") {
			return fmt.Errorf("%w: --modality and --collection go with --for", errUsage)
		}
		n, err := exportTo(c.Context(), db, args[1], c.OutOrStdout(), c.ErrOrStderr())
		if err != nil {
			return err
		}
		if args[1] == "-" {
			return nil
		}
		return report(c.OutOrStdout(), *asJSON, map[string]any{"exported": n, "file": args[1]},
			fmt.Sprintf("exported %d items to %s\n", n, args[1]))
	}
	return c
}

// exportFor writes the per-modality files for a distributed engine and
// prints what went where.
func exportFor(ctx context.Context, db *mmdb.DB, out, target string, o *transfer.ForOptions, stdout, stderr io.Writer, asJSON bool) error {
	t, err := transfer.ParseTarget(target)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fi, err := os.Stat(out); err == nil && !fi.IsDir() {
		return fmt.Errorf("%w: %s is a file; --for writes a folder of files", errUsage, out)
	}
	o.Progress = counter(stderr, "export")
	files, err := transfer.ExportFor(ctx, db, out, t, o)
	if err != nil {
		return err
	}
	var text strings.Builder
	if len(o.Modalities) == 0 {
		for _, m := range db.Modalities() {
			if m.IsMulti() {
				fmt.Fprintf(&text, "skipped %s: it holds sets of vectors, which neither engine loads from these files (export it as JSONL)\n", m.Name)
			}
		}
	}
	for _, f := range files {
		fmt.Fprintf(&text, "%s: %d items carrying %s (vector column %q, %d-d, metric %s: build the index with it)\n", f.Path, f.Rows, f.Modality, f.Vector, f.Dim, f.Metric)
		for _, col := range f.Columns {
			null := ""
			if col.Nullable {
				null = ", nullable"
			}
			fmt.Fprintf(&text, "  attribute %q -> column %q (%s%s)\n", col.Attr, col.Column, col.Type, null)
		}
		if f.Schema != "" {
			fmt.Fprintf(&text, "  Milvus collection %q: create it with %s, then bulk-import %s\n", f.Collection, f.Schema, filepath.Base(f.Path))
		}
	}
	return report(stdout, asJSON, files, text.String())
}

func exportTo(ctx context.Context, db *mmdb.DB, out string, stdout, stderr io.Writer) (int, error) {
	if out == "-" {
		// The schema cannot go beside stdout: it goes to stderr.
		var schema strings.Builder
		if err := transfer.WriteSchema(db, &schema); err != nil {
			return 0, err
		}
		fmt.Fprint(stderr, schema.String())
		return transfer.ExportJSONL(ctx, db, stdout, nil)
	}
	if err := refuseDatabase(db, out); err != nil {
		return 0, err
	}
	switch strings.ToLower(filepath.Ext(out)) {
	case ".jsonl", ".ndjson", ".json", ".parquet":
	default:
		return 0, fmt.Errorf("%w: %s: unknown export format %q (want .jsonl, .ndjson, .json or .parquet, or - for JSON lines on stdout)", errUsage, out, filepath.Ext(out))
	}
	if err := transfer.WriteSchemaFile(db, out+".schema.json"); err != nil {
		return 0, err
	}
	tmp := out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return 0, err
	}
	export := transfer.ExportJSONL
	if strings.EqualFold(filepath.Ext(out), ".parquet") {
		export = transfer.ExportParquet
	}
	n, err := export(ctx, db, f, counter(stderr, "export"))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return 0, err
	}
	return n, os.Rename(tmp, out)
}

// refuseDatabase refuses an export destination that is a database file:
// the open one (by file identity, whatever the path's spelling), or any
// other (bbolt's magic in its first meta page). Writing JSONL over it
// would destroy it, and with it every write acknowledged since.
func refuseDatabase(db *mmdb.DB, out string) error {
	fi, err := os.Stat(out)
	if err != nil {
		return nil // nothing there yet
	}
	if own, err := os.Stat(db.Path()); err == nil && os.SameFile(fi, own) {
		return fmt.Errorf("%w: %s is the database being exported; choose another path", errUsage, out)
	}
	f, err := os.Open(out)
	if err != nil {
		return nil
	}
	defer f.Close()
	var head [20]byte
	if _, err := io.ReadFull(f, head[:]); err == nil && binary.LittleEndian.Uint32(head[16:]) == 0xED0CDAED {
		return fmt.Errorf("%w: %s is a database file; export writes JSONL or Parquet: choose another path (or remove it first)", errUsage, out)
	}
	return nil
}

func statsCmd() *cobra.Command {
	c := newCmd("stats DB", "print the schema, counts and alignments",
		"Prints the file size, item count, each modality with its vector count, the attributes in use,\n"+
			"and the stored alignments and calibrations.",
		"mmdb stats --json media.mmdb", 1)
	asJSON := jsonFlag(c)
	lowMem := lowMemoryFlag(c)
	c.RunE = func(c *cobra.Command, args []string) error {
		db, err := mmdb.Open(args[0], &mmdb.Options{ReadOnly: true, LowMemory: *lowMem})
		if err != nil {
			return err
		}
		defer db.Close()
		st, err := db.Stats()
		if err != nil {
			return err
		}
		return report(c.OutOrStdout(), *asJSON, st, statsText(st))
	}
	return c
}

// indexMemoryText is a modality's index memory for stats: in MiB, and
// whether the vectors are in the file instead (--low-memory).
func indexMemoryText(m mmdb.ModalityStats) string {
	s := fmt.Sprintf("%.1f MiB", float64(m.IndexMemory)/(1<<20))
	if m.IndexMemory < 1<<20 {
		s = fmt.Sprintf("%.0f KiB", float64(m.IndexMemory)/(1<<10))
	}
	if !m.VectorsInMemory {
		s += ", vectors in the file"
	}
	return s
}

func statsText(st mmdb.Stats) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d items, %.1f MiB\n", st.Path, st.Items, float64(st.FileSize)/(1<<20))
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "modality\tdim\tmetric\tspace\tvectors\tindex memory\tencoder")
	for _, m := range st.Modalities {
		fmt.Fprintf(tw, "%s\t%d\t%v\t%s\t%d\t%s\t%s%s\n", m.Name, m.Dim, m.Metric, m.SpaceName(), m.Vectors, indexMemoryText(m), encoderName(m.Encoder), setNote(m.Modality))
	}
	tw.Flush()
	if len(st.Attributes) > 0 {
		fmt.Fprintf(&b, "attributes: %s\n", strings.Join(st.Attributes, ", "))
	}
	for _, a := range st.Alignments {
		fmt.Fprintf(&b, "alignment: %s -> %s (%s)\n", a[0], a[1], a[2])
	}
	for _, c := range st.Calibrations {
		fmt.Fprintf(&b, "calibration: %s -> %s\n", c[0], c[1])
	}
	return b.String()
}

// setNote marks a multi-vector modality in listings.
func setNote(m mmdb.Modality) string {
	if !m.IsMulti() {
		return ""
	}
	return fmt.Sprintf(" (sets, %v)", m.Multi)
}
