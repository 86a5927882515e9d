package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
)

// ptyTimeout is how long expect waits for output before failing.
const ptyTimeout = 5 * time.Second

// ptySession is one mmdb process on a pseudo-terminal: the test types
// into it and waits for what it prints.
type ptySession struct {
	t      *testing.T
	tty    *os.File // the pty master
	cmd    *exec.Cmd
	mu     sync.Mutex
	out    []byte // everything read so far
	pos    int    // expect searches from here
	more   chan struct{}
	eof    chan struct{} // the reader stopped (the process is gone)
	exited chan struct{}
	err    error // cmd.Wait's result, once exited is closed
}

// startPTY runs bin with args on a new pty (HOME=home) and starts reading
// its output. The test is skipped where ptys are not supported.
func startPTY(t *testing.T, bin, home string, args ...string) *ptySession {
	t.Helper()
	cmd := exec.Command(bin, args...)
	env := []string{"HOME=" + home, "TERM=xterm"}
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "HOME=") && !strings.HasPrefix(e, "TERM=") {
			env = append(env, e)
		}
	}
	cmd.Env = env
	// readline completes only when it knows the terminal's width.
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 160})
	if errors.Is(err, pty.ErrUnsupported) {
		t.Skipf("no pty support on %s/%s: %v", runtime.GOOS, runtime.GOARCH, err)
	}
	if err != nil {
		t.Fatalf("starting %s on a pty: %v", bin, err)
	}
	s := &ptySession{t: t, tty: tty, cmd: cmd, more: make(chan struct{}, 1), eof: make(chan struct{}), exited: make(chan struct{})}
	go func() {
		defer close(s.eof)
		b := make([]byte, 4096)
		for {
			n, err := tty.Read(b)
			if n > 0 {
				s.mu.Lock()
				s.out = append(s.out, b[:n]...)
				s.mu.Unlock()
				select {
				case s.more <- struct{}{}:
				default:
				}
			}
			if err != nil {
				return // EIO once the process has exited
			}
		}
	}()
	go func() {
		s.err = cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-s.exited:
		default:
			_ = cmd.Process.Kill()
			<-s.exited
		}
		tty.Close()
		if t.Failed() {
			t.Logf("whole pty output of %v:\n%s", args, s.all())
		}
	})
	return s
}

// send types keys (raw bytes: "\r" is Enter, "\t" Tab, "\x03" Ctrl-C).
func (s *ptySession) send(keys string) {
	s.t.Helper()
	if _, err := s.tty.Write([]byte(keys)); err != nil {
		s.t.Fatalf("typing %q: %v", keys, err)
	}
}

// expect waits until what follows the last match contains substring
// want, and moves past it.
func (s *ptySession) expect(want string) {
	s.t.Helper()
	s.expectRe(regexp.MustCompile(regexp.QuoteMeta(want)))
}

// expectRe waits until what follows the last match matches re, moves
// past the match and returns it. It fails with the output seen since the
// last match when ptyTimeout passes or the process ends first. It returns
// the output it moved past (what came before the match, and the match).
func (s *ptySession) expectRe(re *regexp.Regexp) string {
	s.t.Helper()
	m, err := s.await(re, ptyTimeout)
	if err != nil {
		s.t.Fatalf("waiting for %q: %v; output since the last match:\n%s", re, err, s.pending())
	}
	return m
}

// errNotYet: await's time ran out.
var errNotYet = errors.New("not seen in time")

// await is expectRe that waits at most d and returns errNotYet (or the
// process's end) instead of failing the test.
func (s *ptySession) await(re *regexp.Regexp, d time.Duration) (string, error) {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		loc := re.FindIndex(s.out[s.pos:])
		var m string
		if loc != nil {
			m = string(s.out[s.pos : s.pos+loc[1]])
			s.pos += loc[1]
		}
		s.mu.Unlock()
		if loc != nil {
			return m, nil
		}
		select {
		case <-s.more:
		case <-s.eof:
			s.mu.Lock()
			found := re.Match(s.out[s.pos:])
			s.mu.Unlock()
			if !found {
				return "", errors.New("the process ended")
			}
		case <-deadline.C:
			return "", fmt.Errorf("%w (%v)", errNotYet, d)
		}
	}
}

// pending is the output after the last match, escapes made visible.
func (s *ptySession) pending() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return visible(s.out[s.pos:])
}

func (s *ptySession) all() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return visible(s.out)
}

func visible(b []byte) string {
	q := fmt.Sprintf("%q", b)
	return strings.ReplaceAll(q[1:len(q)-1], `\r\n`, "\\r\\n\n")
}

// wait waits for the process to exit and returns its exit status.
func (s *ptySession) wait() int {
	s.t.Helper()
	select {
	case <-s.exited:
	case <-time.After(ptyTimeout):
		s.t.Fatalf("the shell did not exit within %v; output since the last match:\n%s", ptyTimeout, s.pending())
	}
	<-s.eof // all output read
	var ee *exec.ExitError
	if errors.As(s.err, &ee) {
		return ee.ExitCode()
	}
	if s.err != nil {
		s.t.Fatalf("waiting for the shell: %v", s.err)
	}
	return 0
}

var (
	// The shell prints results after the echoed line, so a count on a
	// line of its own is the statement's result, not the banner's
	// "(3000 items)".
	count3000 = regexp.MustCompile(`\n3000\r\n`)
	prompt    = "mmdb> "
	contPr    = "  ...> "
)

// TestShellPTY drives the interactive shell on a real terminal: prompts,
// continuation lines, history, tab completion, Ctrl-C (during a
// statement and at the prompt) and Ctrl-D.
func TestShellPTY(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" || runtime.GOOS == "js" || runtime.GOOS == "wasip1" {
		t.Skipf("no pty support on %s", runtime.GOOS)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on PATH: cannot build mmdb")
	}
	start := time.Now()
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "mmdb")
	if out, err := exec.Command(goBin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dir := filepath.Join(tmp, "db")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "demo", "--items", "3000", "--dir", dir).CombinedOutput(); err != nil {
		t.Fatalf("mmdb demo: %v\n%s", err, out)
	}
	db := filepath.Join(dir, "demo.mmdb")
	home := filepath.Join(tmp, "home")
	if err := os.Mkdir(home, 0o755); err != nil {
		t.Fatal(err)
	}
	hist := filepath.Join(home, ".mmdb_history")
	t.Logf("build and demo database: %v", time.Since(start).Round(time.Millisecond))

	// Session 1.
	sh := startPTY(t, bin, home, "shell", db)

	// 1. Banner, prompt, a statement.
	sh.expectRe(regexp.MustCompile(`mmdb \S+: ` + regexp.QuoteMeta(db) + ` \(3000 items\)`))
	sh.expect(prompt)
	sh.send("COUNT;\r")
	sh.expectRe(count3000)
	sh.expect(prompt)

	// 2. A statement over two lines: the continuation prompt, then the
	// result once the ';' comes.
	sh.send("COUNT\r")
	sh.expect(contPr)
	sh.send("WHERE concept = 'cat';\r")
	sh.expectRe(regexp.MustCompile(`\n250\r\n`)) // 3000 items over 12 concepts
	sh.expect(prompt)

	// 4. Tab completion: a modality name, then a dot-command. Each
	// completed line is run, so a missing completion shows as an error.
	sh.send("SEARCH ima\t")
	sh.expect("SEARCH image")
	sh.send(" NEAR text OF 'cat-0001' LIMIT 3;\r")
	sh.expectRe(regexp.MustCompile(`\(3 hits\)`))
	sh.expect(prompt)
	sh.send(".sch\t")
	sh.expect(".schema")
	sh.send("\r")
	sh.expect(".define image 64 cosine synthetic-clip")
	sh.expect("-- attributes: ")
	sh.expect(prompt)

	// 6. Ctrl-C at the prompt drops the unfinished statement: the next
	// COUNT runs alone (had the first line been kept, the text would be
	// "COUNT WHERE year = 2001 COUNT;", a syntax error).
	sh.send("COUNT WHERE year = 2001\r")
	sh.expect(contPr)
	sh.send("\x03")
	sh.expect("^C\r\n")
	sh.expect(prompt) // back to the first-line prompt, not "...>"
	sh.send("COUNT;\r")
	if seen := sh.expectRe(count3000); strings.Contains(seen, "Error") {
		t.Errorf("COUNT after Ctrl-C at the prompt: %s", visible([]byte(seen)))
	}
	sh.expect(prompt)

	// 5. Ctrl-C during a long statement cancels it and keeps the shell.
	// Learning text->image with infonce on 3000 pairs runs 200 epochs:
	// 25-32 s uninterrupted on a shared 2-core machine. Once Enter is
	// echoed the statement starts: readline leaves raw mode and the shell
	// listens for Ctrl-C, neither of which shows on the terminal. So Ctrl-C
	// is sent then, and again each second until the shell answers (one that
	// comes before the shell listens is swallowed, harmlessly). The answer,
	// the cancellation, must come long before the statement could end.
	// (The demo's text and image share a space: without FORCE the
	// statement is refused at once and there is nothing to cancel.)
	const slow = "ALIGN text TO image USING infonce FORCE;"
	sh.send(slow + "\r")
	sh.expect(slow + "\r\n") // readline redraws as it goes: wait for Enter
	began := time.Now()
	answer := regexp.MustCompile(`Error: [^\r\n]*\r\n|chose infonce`)
	var seen string
	for tries := 1; ; tries++ {
		sh.send("\x03")
		m, err := sh.await(answer, time.Second)
		if err == nil {
			seen = m
			t.Logf("%q: answered %v after it started, %d Ctrl-C sent", slow, time.Since(began).Round(time.Millisecond), tries)
			break
		}
		if !errors.Is(err, errNotYet) || time.Since(began) > ptyTimeout {
			t.Fatalf("%q: no answer to Ctrl-C within %v (%v); output since Enter:\n%s", slow, ptyTimeout, err, sh.pending())
		}
	}
	if strings.Contains(seen, "Error: ") && !strings.Contains(seen, "Error: cancelled\r\n") {
		t.Fatalf("%q: want the cancellation, got %s", slow, visible([]byte(seen)))
	}
	if strings.Contains(seen, "chose infonce") {
		// Only a machine far faster than this one finishes before a
		// second Ctrl-C; one that ignores Ctrl-C fails on the guard.
		t.Logf("%q finished before Ctrl-C took: this machine is too fast to test cancelling it", slow)
	}
	sh.expect(prompt)
	sh.send("COUNT;\r")
	sh.expectRe(count3000)
	sh.expect(prompt)

	// 3 (first half). .quit leaves with status 0 and the history file
	// holds the statements.
	sh.send(".quit\r")
	if code := sh.wait(); code != 0 {
		t.Fatalf(".quit: exit status %d, want 0", code)
	}
	data, err := os.ReadFile(hist)
	if err != nil {
		t.Fatalf("history file: %v", err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	last := -1
	for i, l := range lines {
		if l == "COUNT;" {
			last = i
		}
	}
	if last < 0 {
		t.Fatalf("history file %s has no line \"COUNT;\":\n%s", hist, data)
	}

	// Session 2. 3: Up arrow recalls history (".quit", if it was kept, is
	// newer than COUNT;), Enter runs it again.
	sh = startPTY(t, bin, home, "shell", db)
	sh.expect(prompt)
	sh.send(strings.Repeat("\x1b[A", len(lines)-last))
	sh.expect("COUNT;")
	sh.send("\r")
	sh.expectRe(count3000)
	sh.expect(prompt)

	// 7. Ctrl-D at an empty prompt leaves with status 0.
	sh.send("\x04")
	if code := sh.wait(); code != 0 {
		t.Fatalf("Ctrl-D: exit status %d, want 0", code)
	}
	t.Logf("whole test: %v", time.Since(start).Round(time.Millisecond))
}
