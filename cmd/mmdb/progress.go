package main

import (
	"io"
	"os"
	"sync"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// isTerminal reports whether w is a terminal.
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progressFunc returns a callback that draws a progress bar with rate and
// ETA on stderr when it is a terminal, and nil (no output at all) when it
// is not: logs and pipes get no control characters.
func progressFunc(stderr io.Writer) func(stage string, done, total int) {
	if !isTerminal(stderr) {
		return nil
	}
	var (
		mu    sync.Mutex
		bar   *progressbar.ProgressBar
		stage string
	)
	return func(s string, done, total int) {
		mu.Lock()
		defer mu.Unlock()
		if bar == nil || s != stage {
			if bar != nil {
				_ = bar.Finish()
			}
			stage = s
			max := int64(total)
			if total <= 0 {
				max = -1 // unknown: a spinner with a count
			}
			bar = progressbar.NewOptions64(max,
				progressbar.OptionSetWriter(stderr),
				progressbar.OptionSetDescription(s),
				progressbar.OptionShowCount(),
				progressbar.OptionShowIts(),
				progressbar.OptionSetItsString("items"),
				progressbar.OptionSetPredictTime(true),
				progressbar.OptionThrottle(100_000_000),
				progressbar.OptionClearOnFinish(),
			)
		}
		_ = bar.Set(done)
		if total > 0 && done >= total {
			_ = bar.Finish()
			bar = nil
		}
	}
}

// counter adapts progressFunc to the (done, total) callbacks of package
// transfer.
func counter(stderr io.Writer, stage string) func(done, total int) {
	p := progressFunc(stderr)
	if p == nil {
		return nil
	}
	return func(done, total int) { p(stage, done, total) }
}
