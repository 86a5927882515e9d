package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/chzyer/readline"
	"github.com/mmdb-go/mmdb"
	"github.com/mmdb-go/mmdb/modality"
	"github.com/mmdb-go/mmdb/query"
	"github.com/mmdb-go/mmdb/transfer"
	"github.com/spf13/cobra"
)

func shellCmd() *cobra.Command {
	c := newCmd("shell DB", "open the interactive shell on a database",
		"Opens DB (creating it if missing) and reads statements ending in ';' (SEARCH, GET, DELETE, COUNT,\n"+
			"ALIGN, EXPLAIN [ANALYZE]) and dot-commands (.help lists them). On a terminal: line editing,\n"+
			"history in ~/.mmdb_history, tab completion, Ctrl-C cancels the running statement. Otherwise it\n"+
			"reads the statements from standard input without prompts and stops at the first error\n"+
			"(exit 1) unless --continue.",
		"mmdb shell media.mmdb\n  echo \"COUNT;\" | mmdb shell media.mmdb", 1)
	cont := c.Flags().Bool("continue", false, "reading a script: go on after an error (the exit code is still 1)")
	mode := c.Flags().String("mode", "table", "output: table, json or csv")
	lowMem := lowMemoryFlag(c)
	c.RunE = func(c *cobra.Command, args []string) error {
		if !validMode(*mode) {
			return fmt.Errorf("%w: --mode must be table, json or csv", errUsage)
		}
		return runShell(c.Context(), args[0], c.InOrStdin(), c.OutOrStdout(), c.ErrOrStderr(), *cont, *mode, *lowMem)
	}
	return c
}

// shell is one shell session.
type shell struct {
	db       *mmdb.DB
	out, err io.Writer
	opts     renderOptions
	timer    bool
	explain  bool
	cont     bool   // go on after errors when not interactive
	tty      bool   // stdin and stdout are terminals: an interactive session
	source   string // the .read file being run, for error messages
	line     int    // the script line being run (0: interactive)
	failed   bool
	depth    int // .read nesting
}

// errQuit ends the session.
var errQuit = errors.New("quit")

func runShell(ctx context.Context, path string, in io.Reader, out, errw io.Writer, cont bool, mode string, lowMem bool) error {
	db, err := mmdb.Open(path, &mmdb.Options{Progress: progressFunc(errw), LowMemory: lowMem})
	if err != nil {
		return err
	}
	defer db.Close()
	sh := &shell{db: db, out: out, err: errw, opts: renderOptions{mode: mode}, cont: cont, tty: isTerminal(in) && isTerminal(out)}
	// The shell handles Ctrl-C itself: it cancels the running statement,
	// not the session.
	ctx = context.WithoutCancel(ctx)
	if sh.tty {
		return sh.interactive(ctx, path)
	}
	if err := sh.script(ctx, in, "stdin"); err != nil && !errors.Is(err, errQuit) {
		if sh.failed {
			return errReported // printed as "Error: ..." already
		}
		return err
	}
	if sh.failed {
		return errReported
	}
	return nil
}

func (sh *shell) interactive(ctx context.Context, path string) error {
	home, _ := os.UserHomeDir()
	rl, err := readline.NewEx(&readline.Config{
		Prompt:            "mmdb> ",
		HistoryFile:       filepath.Join(home, ".mmdb_history"),
		AutoComplete:      &completer{db: sh.db},
		InterruptPrompt:   "^C",
		EOFPrompt:         ".quit",
		HistorySearchFold: true,
		// History keeps whole statements, not their last lines.
		DisableAutoSaveHistory: true,
	})
	if err != nil {
		return err
	}
	defer rl.Close()
	fmt.Fprintf(sh.out, "mmdb %s: %s (%d items). Statements end with ';'. .help for help, .quit to leave.\n", version, path, sh.db.Count())
	var buf splitter
	for {
		if buf.Len() == 0 {
			rl.SetPrompt("mmdb> ")
		} else {
			rl.SetPrompt("  ...> ")
		}
		line, err := rl.Readline()
		if errors.Is(err, readline.ErrInterrupt) {
			buf.Reset() // Ctrl-C at the prompt drops the unfinished statement
			continue
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		pending := buf.String() + line
		if err := sh.feed(ctx, &buf, line); errors.Is(err, errQuit) {
			_ = rl.SaveHistory(strings.TrimSpace(line))
			return nil
		}
		if buf.Len() == 0 && strings.TrimSpace(pending) != "" {
			_ = rl.SaveHistory(historyLine(pending))
		}
	}
}

// historyLine folds a statement typed over several lines into one history
// entry; comment lines are dropped, since a "--" would hide the rest of a
// folded line.
func historyLine(s string) string {
	var parts []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "--") {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, " ")
}

// script runs the statements and dot-commands read from r.
func (sh *shell) script(ctx context.Context, r io.Reader, name string) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<20), transfer.MaxLine)
	var buf splitter
	outer := sh.line
	defer func() { sh.line = outer }()
	sh.line = 0
	for sc.Scan() {
		sh.line++
		if err := sh.feed(ctx, &buf, sc.Text()); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			err = fmt.Errorf("line %d is longer than %d bytes", sh.line+1, transfer.MaxLine)
		}
		return sh.settle(fmt.Errorf("%s: %w", name, err)) // reported, as a statement's error is
	}
	if !buf.blank() {
		return sh.settle(sh.run(ctx, strings.TrimSpace(buf.String()))) // a last statement without ';'
	}
	return nil
}

// feed takes one line: a dot-command (at the start of a statement) runs at
// once; statement text is buffered until a ';' outside quotes and
// comments completes it. Errors stop a script unless --continue.
func (sh *shell) feed(ctx context.Context, buf *splitter, line string) error {
	if buf.blank() && strings.HasPrefix(strings.TrimSpace(line), ".") {
		buf.Reset() // a comment left before a dot-command is not a statement
		dctx, release := interruptible(ctx)
		err := sh.dot(dctx, strings.TrimSpace(line))
		release()
		if err != nil && dctx.Err() != nil && errors.Is(err, context.Canceled) {
			err = errors.New("cancelled")
		}
		return sh.settle(err)
	}
	stmts := buf.write(line + "\n")
	if buf.spaceOnly() {
		buf.Reset()
	}
	if buf.Len() > query.MaxStatementLen {
		buf.Reset()
		return sh.settle(fmt.Errorf("%w: a statement longer than %d bytes (an unterminated quote or a missing ';'?)", mmdb.ErrInvalidQuery, query.MaxStatementLen))
	}
	for _, s := range stmts {
		if err := sh.settle(sh.run(ctx, s)); err != nil {
			return err
		}
	}
	return nil
}

// settle reports a failed statement and says whether to stop.
func (sh *shell) settle(err error) error {
	if err == nil || errors.Is(err, errQuit) {
		return err
	}
	if errors.Is(err, errReported) {
		sh.failed = true
		if sh.depth > 0 || (!sh.cont && !sh.interactiveSession()) {
			return err
		}
		return nil
	}
	if isTerminal(sh.err) {
		fmt.Fprint(sh.err, "\r\x1b[K") // clear a progress bar the statement left
	}
	msg := strings.TrimPrefix(err.Error(), "mmdb: ")
	if sh.line > 0 && !sh.tty {
		msg = fmt.Sprintf("line %d: %s", sh.line, msg)
	}
	if sh.source != "" {
		msg = sh.source + ": " + msg
	}
	fmt.Fprintln(sh.err, "Error:", msg)
	sh.failed = true
	if sh.depth == 0 && !sh.cont && !sh.interactiveSession() {
		return err
	}
	if sh.depth > 0 {
		return err // a .read file stops at its first error
	}
	return nil
}

func (sh *shell) interactiveSession() bool { return sh.tty }

// splitStatements cuts text at each ';' that is outside quotes and --
// comments, and returns the complete statements and the unfinished rest.
func splitStatements(text string) (stmts []string, rest string) {
	var sp splitter
	stmts = sp.write(text)
	return stmts, sp.String()
}

// splitter cuts statement text at each ';' outside quotes and -- comments
// as it arrives, scanning each byte once: a script of many lines inside an
// unterminated quote costs time in its length, not its square.
type splitter struct {
	text    []byte
	start   int  // where the unfinished statement starts
	pos     int  // how far text has been scanned
	quote   byte // the open quote, or 0
	comment bool // inside a -- comment
	content bool // the unfinished statement has text outside comments
	text0   bool // the unfinished statement has any text but white space
	scanned int  // bytes examined so far: what TestSplitterIsLinear counts
}

// write adds text and returns the statements it completes (those made of
// comments only are dropped).
func (s *splitter) write(text string) (stmts []string) {
	s.text = append(s.text, text...)
	for ; s.pos < len(s.text); s.pos++ {
		s.scanned++
		c := s.text[s.pos]
		last := s.pos+1 == len(s.text)
		s.text0 = s.text0 || (c != ' ' && c != '\t' && c != '\n' && c != '\r')
		switch {
		case s.comment:
			s.comment = c != '\n'
		case s.quote != 0:
			if c == s.quote {
				if last {
					return stmts // a doubled quote or not: wait for the next byte
				}
				if s.text[s.pos+1] == s.quote {
					s.pos++ // doubled quote
				} else {
					s.quote = 0
				}
			}
		case c == '\'' || c == '"':
			s.quote, s.content = c, true
		case c == '-' && last:
			return stmts // a comment or not: wait for the next byte
		case c == '-' && s.text[s.pos+1] == '-':
			s.comment = true
		case c == ';':
			if s.content {
				stmts = append(stmts, strings.TrimSpace(string(s.text[s.start:s.pos])))
			}
			s.start, s.content, s.text0 = s.pos+1, false, false
		case c != ' ' && c != '\t' && c != '\n' && c != '\r':
			s.content = true
		}
	}
	if s.start > 0 { // keep only the unfinished statement
		s.text = append(s.text[:0], s.text[s.start:]...)
		s.pos -= s.start
		s.start = 0
	}
	return stmts
}

// String returns the unfinished statement's text.
func (s *splitter) String() string { return string(s.text[s.start:]) }

// Len is the length of the unfinished statement's text.
func (s *splitter) Len() int { return len(s.text) - s.start }

// blank reports whether the unfinished statement is only comments and
// white space.
func (s *splitter) blank() bool { return !s.content && s.quote == 0 }

// spaceOnly reports whether the unfinished statement is only white space
// (as far as scanned: a byte held back for the next write counts as text).
func (s *splitter) spaceOnly() bool { return !s.text0 && s.pos == len(s.text) }

// Reset drops the unfinished statement.
func (s *splitter) Reset() { *s = splitter{text: s.text[:0]} }

// interruptible returns a context that Ctrl-C cancels, and its release.
func interruptible(ctx context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancel(ctx)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt)
	go func() {
		select {
		case <-sig:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, func() { signal.Stop(sig); cancel() }
}

// run executes one statement; Ctrl-C cancels it.
func (sh *shell) run(ctx context.Context, stmt string) error {
	ctx, release := interruptible(ctx)
	defer release()
	text := stmt
	up := strings.ToUpper(strings.TrimSpace(stmt))
	if sh.explain && strings.HasPrefix(up, "SEARCH") {
		text = "EXPLAIN ANALYZE " + stmt
	}
	start := time.Now()
	res, err := sh.db.Query(ctx, text)
	took := time.Since(start)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			return errors.New("cancelled")
		}
		if res != nil { // an ALIGN that stored nothing: its report says why
			if rerr := render(sh.out, res, sh.opts); rerr != nil {
				return rerr
			}
		}
		return withCaret(err, text)
	}
	if err := render(sh.out, res, sh.opts); err != nil {
		return err
	}
	if sh.timer {
		fmt.Fprintf(sh.out, "Run Time: %s\n", took.Round(time.Microsecond))
	}
	return nil
}

const shellHelp = `Statements end with ';' and may span lines:
  SEARCH image NEAR text OF 'id' [WEIGHT w], audio [0.1, ...] [FUSE rrf|weighted|dbsf|early|best_score]
         (WEIGHT -1: an example to move away from)
         [WHERE filter] [LIMIT k] [OFFSET n] [SCORE >= x] [DISTANCE <= x]
         [EXCLUDE 'id', ...] [KEEP PROBES] [GROUP BY attr [PER n]] [EF n] [EXACT];   (any order)
    probes from raw content, for modalities with an encoder (mmdb define --help):
         image FILE 'cat.png', audio FILE 'bark.wav', caption 'a brown dog on grass'
  GET 'id', ...;   DELETE 'id', ...;   COUNT [WHERE filter];
  ALIGN from TO to [USING auto|ridge|procrustes|cca|infonce] [BY label] [FORCE];
  CALIBRATE probe TO target [AUTO] [CENTRE] [ALPHA x] [BETA x] [K n] [FORCE];
  DROP ALIGNMENT|CALIBRATION from TO to;   DELETE WHERE filter;
  (DROP MODALITY needs the file closed: mmdb drop DB MODALITY)
  EXPLAIN [ANALYZE] statement;
Dot-commands:
  .help                      this text
  .schema                    modalities and attributes
  .stats                     counts, file size, alignments
  .define NAME DIM METRIC [SPACE [MULTI]]   add a modality (metric: cosine, dot or l2;
                             MULTI: maxsim or maxpair, a set of vectors an item)
  .mode table|json|csv       how results print
  .timer on|off              print each statement's run time
  .explain on|off            run SEARCH statements as EXPLAIN ANALYZE
  .vectors on|off            print vectors in full instead of [N floats]
  .import FILE [MODALITY [IDS]]   JSONL, or NPY rows of MODALITY (IDs from the IDS file)
  .export FILE               every item as JSONL, or Parquet for .parquet (and FILE.schema.json)
  .snapshot FILE             a consistent copy of the database
  .read FILE                 run the statements in FILE
  .quit                      leave (also .exit, Ctrl-D)
`

// dot runs a dot-command.
func (sh *shell) dot(ctx context.Context, line string) error {
	f := strings.Fields(line)
	arg := func(i int) string {
		if i < len(f) {
			return f[i]
		}
		return ""
	}
	onOff := func(p *bool) error {
		switch arg(1) {
		case "on":
			*p = true
		case "off":
			*p = false
		default:
			return fmt.Errorf("%s wants on or off", f[0])
		}
		return nil
	}
	switch f[0] {
	case ".help":
		fmt.Fprint(sh.out, shellHelp)
	case ".quit", ".exit":
		return errQuit
	case ".schema":
		st, err := sh.db.Stats()
		if err != nil {
			return err
		}
		for _, m := range st.Modalities {
			multi := ""
			if m.IsMulti() {
				multi = " " + m.Multi.String()
			}
			fmt.Fprintf(sh.out, ".define %s %d %v %s%s\n", m.Name, m.Dim, m.Metric, m.SpaceName(), multi)
			if m.Encoder != nil {
				fmt.Fprintf(sh.out, "-- %s encoder: %s\n", m.Name, m.Encoder)
			}
		}
		if len(st.Attributes) > 0 {
			fmt.Fprintf(sh.out, "-- attributes: %s\n", strings.Join(st.Attributes, ", "))
		}
	case ".stats":
		st, err := sh.db.Stats()
		if err != nil {
			return err
		}
		fmt.Fprint(sh.out, statsText(st))
	case ".define":
		if len(f) < 4 || len(f) > 6 {
			return errors.New(".define NAME DIM METRIC [SPACE [maxsim|maxpair]]")
		}
		dim, err := strconv.Atoi(f[2])
		if err != nil {
			return fmt.Errorf(".define: dimension %q is not a number", f[2])
		}
		metric, err := modality.ParseMetric(strings.ToLower(f[3]))
		if err != nil {
			return err
		}
		space, multi := arg(4), arg(5)
		if _, err := modality.ParseMulti(strings.ToLower(space)); err == nil && space != "" && multi == "" {
			space, multi = "", space // .define tok 128 cosine maxsim: no space, a set
		}
		agg, err := modality.ParseMulti(strings.ToLower(multi))
		if err != nil {
			return err
		}
		return sh.db.DefineModality(mmdb.Modality{Name: f[1], Dim: dim, Metric: metric, Space: space, Multi: agg})
	case ".mode":
		if !validMode(arg(1)) {
			return errors.New(".mode wants table, json or csv")
		}
		sh.opts.mode = arg(1)
	case ".timer":
		return onOff(&sh.timer)
	case ".explain":
		return onOff(&sh.explain)
	case ".vectors":
		return onOff(&sh.opts.vectors)
	case ".import":
		if len(f) < 2 {
			return errors.New(".import FILE [MODALITY [IDS]]")
		}
		rep, err := importFile(ctx, sh.db, f[1], arg(2), arg(3), false, transfer.Options{Progress: counter(sh.err, "import")}, npyFlags{index: -1})
		if err != nil {
			return err
		}
		fmt.Fprintln(sh.out, rep.String())
	case ".export":
		if len(f) != 2 {
			return errors.New(".export FILE")
		}
		n, err := exportTo(ctx, sh.db, f[1], sh.out, sh.err)
		if err != nil {
			return err
		}
		fmt.Fprintf(sh.out, "exported %d items to %s\n", n, f[1])
	case ".snapshot":
		if len(f) != 2 {
			return errors.New(".snapshot FILE")
		}
		if err := sh.db.Snapshot(ctx, f[1]); err != nil {
			return err
		}
		fmt.Fprintf(sh.out, "snapshot written to %s\n", f[1])
	case ".read":
		if len(f) != 2 {
			return errors.New(".read FILE")
		}
		if sh.depth >= 8 {
			return errors.New(".read: nested too deep")
		}
		file, err := os.Open(f[1])
		if err != nil {
			return err
		}
		defer file.Close()
		sh.depth++
		outer := sh.source
		sh.source = f[1]
		defer func() { sh.depth--; sh.source = outer }()
		if err := sh.script(ctx, file, f[1]); err != nil {
			if errors.Is(err, errQuit) {
				return err
			}
			return fmt.Errorf("%w: %s stopped at its first error", errReported, f[1])
		}
	default:
		return fmt.Errorf("unknown command %s (.help lists them)", f[0])
	}
	return nil
}

// completer completes dot-commands, statement keywords, and the
// database's modality and attribute names.
type completer struct{ db *mmdb.DB }

var (
	dotCommands = []string{".help", ".schema", ".stats", ".define", ".mode", ".timer", ".explain", ".vectors", ".import", ".export", ".snapshot", ".read", ".quit", ".exit"}
	stmtWords   = []string{"SEARCH", "NEAR", "OF", "WEIGHT", "FUSE", "WHERE", "LIMIT", "EF", "EXACT", "GET", "DELETE", "COUNT",
		"EXPLAIN", "ANALYZE", "ALIGN", "TO", "USING", "BY", "FORCE", "FILE", "OFFSET", "EXCLUDE", "SCORE", "DISTANCE", "GROUP", "PER", "KEEP", "PROBES", "CALIBRATE", "DROP", "ALIGNMENT", "CALIBRATION", "MODALITY", "AUTO", "CENTRE", "ALPHA", "BETA", "AND", "OR", "NOT", "IN", "BETWEEN", "EXISTS", "TRUE", "FALSE",
		"rrf", "weighted", "dbsf", "early", "best_score", "auto", "ridge", "procrustes", "cca", "infonce"}
)

// Do implements readline.AutoCompleter: the candidates' remaining letters
// for the word before the cursor.
func (c *completer) Do(line []rune, pos int) ([][]rune, int) {
	start := pos
	for start > 0 && isWordRune(line[start-1]) {
		start--
	}
	prefix := string(line[start:pos])
	var words []string
	if start == 0 && strings.HasPrefix(prefix, ".") {
		words = dotCommands
	} else {
		words = append(words, stmtWords...)
		if st, err := c.db.Stats(); err == nil {
			for _, m := range st.Modalities {
				words = append(words, m.Name)
			}
			words = append(words, st.Attributes...)
		}
	}
	return completions(prefix, words), len([]rune(prefix))
}

func isWordRune(r rune) bool {
	return r == '_' || r == '-' || r == '.' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
}

// completions returns the suffixes of the words that start with prefix
// (keywords case-insensitively, in the case the prefix was typed in).
func completions(prefix string, words []string) [][]rune {
	if prefix == "" {
		return nil
	}
	var out [][]rune
	seen := map[string]bool{}
	for _, w := range words {
		if len(w) <= len(prefix) || !strings.EqualFold(w[:len(prefix)], prefix) {
			continue
		}
		rest := w[len(prefix):]
		if strings.ToUpper(w) == w && strings.ToLower(prefix) == prefix {
			rest = strings.ToLower(rest)
		}
		if !seen[rest] {
			seen[rest] = true
			out = append(out, []rune(rest))
		}
	}
	return out
}
