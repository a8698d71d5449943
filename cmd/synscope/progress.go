package main

import (
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/synscope/synscope/capture"
)

// progress shows how much of the input has been read, on stderr, only when
// stderr is a terminal (never in pipes, logs or CI output).
type progress struct {
	bar   *progressbar.ProgressBar
	src   capture.Source
	total int64
}

// newProgress returns nil when no bar should be shown: stderr is not a
// terminal, or the input is small enough to be read in a blink.
func newProgress(stderr io.Writer, paths []string, src capture.Source) *progress {
	f, ok := stderr.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	var total int64
	for _, p := range paths {
		st, err := os.Stat(p)
		if p == "-" || err != nil || !st.Mode().IsRegular() {
			total = -1 // unknown: a spinner
			break
		}
		total += st.Size()
	}
	if total >= 0 && total < 64<<20 {
		return nil
	}
	bar := progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(stderr),
		progressbar.OptionSetDescription("reading"),
		progressbar.OptionShowBytes(true),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetPredictTime(true),
	)
	return &progress{bar: bar, src: src, total: total}
}

// update sets the bar to the bytes consumed so far (compressed inputs count
// decompressed bytes, so their bar is a spinner).
func (p *progress) update() {
	if p == nil {
		return
	}
	_ = p.bar.Set64(p.src.Info().Bytes)
}

func (p *progress) finish() {
	if p == nil {
		return
	}
	_ = p.bar.Finish()
}
